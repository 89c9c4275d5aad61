"""Fixtures for the scaled configuration: real PostgreSQL and Redis servers (tests/support/services.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.services import PostgresServer, RedisServer, ServiceMissing

REQUIRED = os.environ.get("TOLLGATE_SERVICES_REQUIRED") == "1"


def _missing(error: ServiceMissing) -> None:
    if REQUIRED:
        pytest.fail(str(error))
    pytest.skip(str(error))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session; tests take a fresh database from it (`pg_url`)."""
    try:
        server = PostgresServer()
    except ServiceMissing as error:
        _missing(error)
    try:
        server.init().start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(postgres) -> str:
    """The URL of a new, empty database of the session's cluster."""
    return postgres.database()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A Redis server of this test's own (it may stop and start it)."""
    try:
        server = RedisServer(tmp_path / "redis")
    except ServiceMissing as error:
        _missing(error)
    server.start()
    yield server
    server.kill()
