"""The PostgreSQL store's usage over time (`usage_series`, `spend_by_account`), from the hourly aggregates.

A part of `PostgresStore`; the SQL and the folds are `store/usage_series.py`'s, the embedded store's own (a
page of accounts' sums is one grouped statement here, not one per account: each is a round trip away).
"""

from __future__ import annotations

import asyncpg

from tollgate.store.base import UnknownCursor
from tollgate.store.postgres.usage_reading import PostgresReading, fetch, fetch_all
from tollgate.store.usage_series import (
    ACCOUNT_CREATED,
    AccountSpend,
    Sums,
    UsageSeries,
    accounts_page_query,
    accounts_sums_query,
    key_names_queries,
    series_of,
    series_query,
    sums_of,
)


class PostgresSeries(PostgresReading):
    """`usage_series` and `spend_by_account` of `PostgresStore`."""

    async def usage_series(self, account_id: str, since: float, until: float, group_by: str | None, bucket: int,
                           key_id: str | None = None) -> UsageSeries:
        async def read(conn: asyncpg.Connection) -> UsageSeries:
            series = series_of(await fetch(conn, series_query(account_id, since, until, group_by, bucket, key_id)),
                               group_by)
            series.key_names.update((r[0], r[1]) for r in await fetch_all(conn, key_names_queries(series, group_by)))
            return series

        return await self._snapshot(read)

    async def spend_by_account(self, since: float, until: float, after: str | None,
                               limit: int) -> list[AccountSpend]:
        async def read(conn: asyncpg.Connection) -> list[AccountSpend]:
            created = None
            if after is not None:
                found = await fetch(conn, (ACCOUNT_CREATED, [after]))
                if not found:
                    raise UnknownCursor(after)
                created = found[0][0]
            accounts = await fetch(conn, accounts_page_query(after, created, limit))
            if not accounts:
                return []
            sums = {row[0]: sums_of(row[1:]) for row in
                    await fetch(conn, accounts_sums_query([a[0] for a in accounts], since, until))}
            return [AccountSpend(account_id, name, created_at, sums.get(account_id) or Sums())
                    for account_id, name, created_at in accounts]

        return await self._snapshot(read)
