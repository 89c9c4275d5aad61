"""How the PostgreSQL store's read mixins reach the database: one snapshot per report, builders' SQL numbered.

The SQL is the shared builders' (`store/usage_queries.py`, `usage_series.py`, `request_log.py`,
`alert_rows.py`), written with `?` placeholders; `fetch` numbers them for asyncpg. A report that reads
more than one statement (the prune horizon, then the rows it decides on; a page of accounts, then their
sums) reads them in one READ ONLY REPEATABLE READ transaction: a prune moves the horizon and deletes the
records before it in one commit, so no report sees a record counted twice or not at all. Every call is
bounded by `PostgresStore._call` (StoreUnavailable when the database is unreachable or too slow).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import asyncpg

from tollgate.store import usage_queries as q
from tollgate.store.dialect import Query, numbered

T = TypeVar("T")


async def fetch(conn: asyncpg.Connection, query: Query) -> list[asyncpg.Record]:
    sql, args = query
    return await conn.fetch(numbered(sql), *args)


async def fetch_all(conn: asyncpg.Connection, queries: Iterable[Query]) -> list[asyncpg.Record]:
    """The rows of every query, in order (each query one round trip, in the caller's snapshot)."""
    rows: list[asyncpg.Record] = []
    for query in queries:
        rows += await fetch(conn, query)
    return rows


async def execute(conn: asyncpg.Connection, query: Query) -> int:
    """Run a change; how many rows it touched (from its status: 'INSERT 0 1', 'UPDATE 3', 'DELETE 0')."""
    sql, args = query
    return int((await conn.execute(numbered(sql), *args)).rsplit(" ", 1)[-1])


async def horizon(conn: asyncpg.Connection) -> float:
    """Raw records before this time may have been pruned (0: none ever were)."""
    return q.horizon_of(await conn.fetchval(q.PRUNED_BEFORE))


class PostgresReading:
    """What the read mixins share. `_call` (fn(conn) on a pooled connection, bounded), `_request` (the same with
    the request path's short timeout) and `_ledger_sync` (wait until this process's journaled batches are in
    PostgreSQL) are `PostgresStore`'s."""

    _call: Callable[..., Awaitable[Any]]
    _request: Callable[..., Awaitable[Any]]
    _ledger_sync: Callable[[], Awaitable[None]]

    async def _ledger_rows(self, query: Query) -> list[asyncpg.Record]:
        """One statement's rows of ledger data (one statement is its own snapshot)."""
        await self._ledger_sync()
        return await self._call(lambda conn: fetch(conn, query))

    async def _snapshot(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], request: bool = False) -> T:
        """`fn(conn)` in a read-only transaction that sees one snapshot of the ledger for every statement;
        with `request`, within the request path's timeout."""
        await self._ledger_sync()

        async def run(conn: asyncpg.Connection) -> T:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await fn(conn)

        return await (self._request(run) if request else self._call(run))
