"""The PostgreSQL URL's own settings: taken out of the query before asyncpg sees it, arguments winning, and the
password never shown."""

from __future__ import annotations

import pytest

from tollgate.store import open_store
from tollgate.store.postgres.connection import POOL_MAX, parse_url


def test_tollgate_settings_come_out_of_the_query_and_the_rest_stays():
    settings = parse_url("postgresql://app:s3cret@db:5432/tollgate?pool_max=20&sslmode=require&request_timeout=0.5")
    assert (settings.pool_max, settings.request_timeout) == (20, 0.5)
    assert settings.dsn == "postgresql://app:s3cret@db:5432/tollgate?sslmode=require"
    assert parse_url("postgres://db/x").pool_max == POOL_MAX


def test_arguments_win_over_the_url():
    settings = parse_url("postgresql://db/x?pool_max=20&request_timeout=3", pool_max=4, request_timeout=1.0)
    assert (settings.pool_max, settings.request_timeout) == (4, 1.0)


@pytest.mark.parametrize("query", ["pool_max=many", "pool_max=0", "request_timeout=-1", "statement_timeout=0"])
def test_a_bad_setting_is_refused(query):
    with pytest.raises(ValueError):
        parse_url(f"postgresql://db/x?{query}")


def test_the_password_is_never_shown():
    settings = parse_url("postgresql://app:s3cret@db:5432/tollgate")
    assert "s3cret" not in settings.safe_url and "s3cret" not in repr(settings)
    with pytest.raises(ValueError) as refused:
        open_store("mysql://app:s3cret@db/tollgate")
    assert "s3cret" not in str(refused.value)
    assert "s3cret" not in repr(open_store("postgresql://app:s3cret@db:5432/tollgate"))
