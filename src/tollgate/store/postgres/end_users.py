"""The PostgreSQL store's usage by end user (resellers): `store/usage_by_end_user.py`'s folds over its sums.

A part of `PostgresStore`. The per-key sums are `postgres/usage.py`'s (the shared `usage_queries`), read in
the same snapshot as the keys' labels, so a report by end user adds up to the account's to the nano-dollar.
"""

from __future__ import annotations

import asyncpg

from tollgate.domain.spend import SpendSummary
from tollgate.store.postgres.usage import by_key_in, summary_in
from tollgate.store.postgres.usage_reading import PostgresReading, fetch
from tollgate.store.usage_by_end_user import EndUserSpend, end_user_keys_query, end_users_of, labels_query, merged


class PostgresEndUsers(PostgresReading):
    """`usage_by_end_user` and `end_user_summary` of `PostgresStore`."""

    async def usage_by_end_user(self, account_id: str, since: float | None, until: float | None,
                                end_user: str | None = None) -> list[EndUserSpend]:
        async def read(conn: asyncpg.Connection) -> list[EndUserSpend]:
            spent = {key_id: spend for key_id, _, spend in await by_key_in(conn, account_id, since, until)}
            return end_users_of(spent, await fetch(conn, labels_query(account_id, end_user)))

        return await self._snapshot(read)

    async def end_user_summary(self, account_id: str, end_user: str, since: float | None,
                               until: float | None) -> SpendSummary:
        async def read(conn: asyncpg.Connection) -> SpendSummary:
            keys = await fetch(conn, end_user_keys_query(account_id, end_user))
            return merged([(key_id, name, await summary_in(conn, account_id, key_id, since, until, None))
                           for key_id, name in keys])

        return await self._snapshot(read)
