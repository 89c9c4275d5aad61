"""The PostgreSQL store's reads of usage: records, sums (`usage_summary`, `usage_total`), export pages, samples.

A part of `PostgresStore` (it inherits `PostgresUsage`). The SQL and the folds are `store/usage_queries.py`'s,
the same the embedded store runs, in PostgreSQL's dialect (`dialect.POSTGRES`: a time floored to its second
with `floor`, no planner hints): a report here equals the SQLite one to the nano-dollar, pruned history
(from the hourly aggregates) and ISO weeks included. PostgreSQL sums BIGINTs into NUMERIC; `usage_queries`
makes them Python ints exactly, never floats.
"""

from __future__ import annotations

import asyncpg

from tollgate.domain.spend import Spend, SpendSummary
from tollgate.domain.usage import UsageRecord
from tollgate.store import usage_queries as q
from tollgate.store.dialect import POSTGRES
from tollgate.store.postgres.usage_reading import PostgresReading, fetch, fetch_all, horizon


async def summary_in(conn: asyncpg.Connection, account_id: str, key_id: str | None, since: float | None,
                     until: float | None, window: int | None) -> SpendSummary:
    """`usage_summary` without `by_key`, in the caller's snapshot."""
    queries = q.summary_queries(POSTGRES, await horizon(conn), account_id, key_id, since, until, window)
    return q.summary_of(await fetch_all(conn, queries), window)


async def by_key_in(conn: asyncpg.Connection, account_id: str, since: float | None,
                    until: float | None) -> list[tuple[str, str, Spend]]:
    """(key id, name, spend) of every key of the account, oldest key first, in the caller's snapshot."""
    rows = await fetch_all(conn, q.by_key_queries(POSTGRES, await horizon(conn), account_id, since, until))
    return q.by_key_of(rows, await fetch(conn, q.keys_query(account_id)))


class PostgresUsage(PostgresReading):
    """Methods of `PostgresStore` (see the module docstring)."""

    async def routed_samples(self, count: int, since: float) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in await self._ledger_rows(q.routed_samples_query(count, since))]

    async def usage_records(
        self, account_id: str, key_id: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[UsageRecord]:
        rows = await self._ledger_rows(q.records_query(POSTGRES, account_id, key_id, since, until))
        return [UsageRecord(*r) for r in rows]

    async def usage_summary(
        self, account_id: str, key_id: str | None = None, since: float | None = None, until: float | None = None,
        window: int | None = None, per_key: bool = False,
    ) -> SpendSummary:
        async def read(conn: asyncpg.Connection) -> SpendSummary:
            summary = await summary_in(conn, account_id, key_id, since, until, window)
            if per_key:
                summary.by_key = await by_key_in(conn, account_id, since, until)
            return summary

        return await self._snapshot(read)

    async def usage_total(self, account_id: str, key_id: str | None, since: float) -> Spend:
        """`/v1/usage` asks this on every call: within the request path's timeout."""
        async def read(conn: asyncpg.Connection) -> Spend:
            queries = q.total_queries(POSTGRES, await horizon(conn), account_id, key_id, since)
            return q.total_of(await fetch_all(conn, queries))

        return await self._snapshot(read, request=True)

    async def usage_records_page(self, after_id: int, before: float | None,
                                 limit: int) -> list[tuple[int, UsageRecord]]:
        rows = await self._ledger_rows(q.records_page_query(after_id, before, limit))
        return [(row[0], UsageRecord(*tuple(row)[1:])) for row in rows]
