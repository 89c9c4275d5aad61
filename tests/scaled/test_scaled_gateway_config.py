"""The scaled configuration's rules: what may run with more than one worker, and what is refused at start.

More than one process needs PostgreSQL and Redis; Redis needs PostgreSQL; PostgreSQL alone runs one
worker (the embedded ledger). A refusal names what to configure and the guide. No server is needed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import ROOT
from tests.support.toml import dumps
from tollgate.config import ConfigError, load_config

PG = "postgresql://tollgate:s3cret-pw@127.0.0.1:5432/tollgate"
REDIS = "redis://127.0.0.1:6379/0"


def write(tmp_path, server: dict, **sections) -> str:
    path = tmp_path / "t.toml"
    path.write_text(dumps({"server": server, **sections}))
    return str(path)


@pytest.mark.parametrize("server, needs", [
    ({"workers": 2}, ['database = "postgresql://..."', 'redis = "redis://..."', "server.workers = 2"]),
    ({"workers": 3, "database": PG}, ['redis = "redis://..."', "server.workers = 3"]),
    ({"redis": REDIS}, ['server.redis needs database = "postgresql://..."']),
    ({"workers": 2, "redis": REDIS}, ['database = "postgresql://..."']),
])
def test_what_cannot_hold_budgets_across_processes_is_refused_with_what_to_configure(tmp_path, server, needs):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, server), env={})
    message = str(info.value)
    assert "docs/deploy.md" in message
    for part in needs:
        assert part in message


def test_the_scaled_combinations_load_and_keep_their_settings(tmp_path):
    path = write(tmp_path, {"workers": 4, "database": PG, "redis": REDIS},
                 database={"pool_max": 20, "request_timeout": 1.5},
                 redis={"hold_seconds": 10, "renew_every": 2, "socket_timeout": 0.5, "pool_max": 32, "prefix": "prod"},
                 ledger={"journal_dir": str(tmp_path / "journal")})
    config = load_config(path, env={})
    assert (config.server.workers, config.server.database, config.server.redis) == (4, PG, REDIS)
    assert (config.database.pool_max, config.database.request_timeout) == (20, 1.5)
    r = config.redis
    assert (r.hold_seconds, r.renew_every, r.socket_timeout, r.pool_max, r.prefix) == (10, 2, 0.5, 32, "prod")
    assert config.ledger.journal_dir == str(tmp_path / "journal")
    # PostgreSQL alone: one worker, the embedded ledger on it.
    alone = load_config(write(tmp_path, {"database": PG}), env={})
    assert (alone.server.redis, alone.server.workers) == (None, 1)


def test_the_environment_sets_database_redis_and_workers(tmp_path):
    config = load_config(write(tmp_path, {}), env={"TOLLGATE_DATABASE": PG, "TOLLGATE_REDIS": REDIS,
                                                   "TOLLGATE_WORKERS": "2"})
    assert (config.server.database, config.server.redis, config.server.workers) == (PG, REDIS, 2)
    with pytest.raises(ConfigError, match="TOLLGATE_WORKERS=2 needs"):
        load_config(write(tmp_path, {}), env={"TOLLGATE_WORKERS": "2"})
    with pytest.raises(ConfigError, match="TOLLGATE_WORKERS"):
        load_config(write(tmp_path, {}), env={"TOLLGATE_WORKERS": "two"})
    # The old name of server.redis still works, and "embedded" still means none.
    assert load_config(write(tmp_path, {"budget_store": "embedded"}), env={}).server.redis is None
    old = load_config(write(tmp_path, {"database": PG, "budget_store": REDIS}), env={})
    assert old.server.redis == REDIS


@pytest.mark.parametrize("server, sections, key", [
    ({"redis": "http://127.0.0.1:6379", "database": PG}, {}, "server.redis"),
    ({"database": "mysql://x"}, {}, "server.database"),
    ({}, {"redis": {"hold_seconds": 4, "renew_every": 3}}, "redis.renew_every"),
    ({}, {"redis": {"hold_secs": 4}}, "redis.hold_secs"),
    ({}, {"database": {"pool_max": 0}}, "database.pool_max"),
])
def test_a_bad_scaled_setting_names_its_key(tmp_path, server, sections, key):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, server, **sections), env={})
    assert key in str(info.value)


def test_a_refused_database_url_does_not_print_its_password(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, {"database": "mysql://tollgate:s3cret-pw@db/x"}), env={})
    assert "s3cret-pw" not in str(info.value)


def serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tollgate", "serve", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env=env)


def test_two_workers_on_the_embedded_store_are_refused_at_start_with_what_to_configure(tmp_path):
    done = serve("--workers", "2", "--config", write(tmp_path, {"database": f"sqlite:///{tmp_path / 'x.db'}"}))
    assert done.returncode == 2
    assert ('--workers 2 needs database = "postgresql://..." and redis = "redis://..." in [server] (docs/deploy.md)'
            in done.stderr)
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened


def test_two_workers_on_postgresql_without_redis_are_refused_at_start(tmp_path):
    done = serve("--config", write(tmp_path, {"workers": 2, "database": PG}))
    assert done.returncode == 2
    assert 'server.workers = 2 needs redis = "redis://..."' in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout


def test_the_database_section_reaches_the_postgresql_store_through_its_url(tmp_path):
    from tollgate.serve.setup import postgres_url

    url = PG + "?pool_max=3&sslmode=disable"
    as_written = load_config(write(tmp_path, {"database": url}), env={})
    assert postgres_url(as_written) == url  # nothing configured: the URL's own settings stay
    configured = load_config(write(tmp_path, {"database": url}, database={"pool_max": 7, "request_timeout": 1.5}),
                             env={})
    assert postgres_url(configured) == PG + "?sslmode=disable&pool_max=7&request_timeout=1.5"  # [database] wins
