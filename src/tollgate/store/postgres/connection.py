"""Reaching PostgreSQL: the URL's own settings, the bounded pool, and "unreachable" as one domain refusal.

The URL is the operator's `database = "postgresql://user:pw@host:port/db?pool_max=20"`. Tollgate's
settings ride in its query (asyncpg would send unknown query parameters to the server as settings)
and are taken out before the rest goes to asyncpg. Every wait on the database is bounded: connecting,
waiting for a pooled connection and each statement (client side, and `statement_timeout` server side),
so a database that is down or stuck costs a request a refusal it can retry, never a hung worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from tollgate.domain.refusals import StoreUnavailable
from tollgate.domain.secrets import redacted_url

T = TypeVar("T")

POOL_MAX = 10
# The request path (key lookups, the change log) waits this long before answering "unavailable" (seconds).
REQUEST_TIMEOUT = 2.0
# Everything else: management writes, reports, ledger batches.
STATEMENT_TIMEOUT = 10.0

# Errors that say "the database is not there (now)", not "this statement is wrong".
UNREACHABLE = (OSError, TimeoutError, asyncio.TimeoutError, asyncpg.InterfaceError,
               asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
               asyncpg.exceptions.InsufficientResourcesError)


@dataclass(frozen=True, slots=True)
class PgSettings:
    """Where the database is (`dsn`, for asyncpg) and how long tollgate waits on it."""

    dsn: str = field(repr=False)  # holds the password: never in a log line or a repr
    pool_max: int = POOL_MAX
    request_timeout: float = REQUEST_TIMEOUT
    statement_timeout: float = STATEMENT_TIMEOUT

    @property
    def safe_url(self) -> str:
        """The URL without its password, for log lines and error messages."""
        return redacted_url(self.dsn)


_OURS = {"pool_max": int, "request_timeout": float, "statement_timeout": float}


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def parse_url(url: str, pool_max: int | None = None, request_timeout: float | None = None) -> PgSettings:
    """Settings from a `postgresql://` URL; explicit arguments win over the URL's query."""
    parts = urlsplit(url)
    kept, ours = [], {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OURS:
            try:
                ours[name] = _OURS[name](value)
            except ValueError:
                raise ValueError(f"{name}={value!r} in the database URL is not a number") from None
        else:
            kept.append((name, value))
    settings = PgSettings(urlunsplit(parts._replace(query=urlencode(kept))), **ours)
    if pool_max is not None:
        settings = replace(settings, pool_max=pool_max)
    if request_timeout is not None:
        settings = replace(settings, request_timeout=request_timeout)
    if settings.pool_max < 1 or settings.request_timeout <= 0 or settings.statement_timeout <= 0:
        raise ValueError("pool_max, request_timeout and statement_timeout must be positive")
    return settings


def server_settings(settings: PgSettings) -> dict[str, str]:
    return {"application_name": "tollgate", "statement_timeout": str(int(settings.statement_timeout * 1000))}


async def create_pool(settings: PgSettings) -> asyncpg.Pool:
    """The bounded pool (at most `pool_max` connections, one opened at start)."""
    pool = await bounded(settings.statement_timeout, asyncpg.create_pool(
        settings.dsn, min_size=1, max_size=settings.pool_max, timeout=settings.request_timeout,
        command_timeout=settings.statement_timeout, server_settings=server_settings(settings)))
    assert pool is not None
    return pool


async def connect(settings: PgSettings) -> asyncpg.Connection:
    """One connection of its own (the LISTEN connection, the ledger's advisory lock), outside the pool."""
    return await bounded(settings.request_timeout, asyncpg.connect(
        settings.dsn, timeout=settings.request_timeout, server_settings=server_settings(settings)))


async def bounded(timeout: float, work: Awaitable[T]) -> T:
    """`work` within `timeout` seconds; StoreUnavailable when the database is unreachable or too slow."""
    try:
        async with asyncio.timeout(timeout):
            return await work
    except UNREACHABLE as exc:
        raise StoreUnavailable() from exc


async def on_connection(pool: asyncpg.Pool, timeout: float, fn: Callable[[asyncpg.Connection], Awaitable[T]],
                        transaction: bool = False) -> T:
    """`fn(a pooled connection)`, in a transaction when asked, all of it within `timeout` seconds."""
    async def run() -> T:
        async with pool.acquire() as conn:
            if not transaction:
                return await fn(conn)
            async with conn.transaction():
                return await fn(conn)

    return await bounded(timeout, run())
