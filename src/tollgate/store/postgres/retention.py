"""Pruning raw usage records on PostgreSQL (ledger/retention.py decides when): the horizon first, then each
account's oldest records on its (account_id, created_at) index, in bounded batches.

As store/usage_sums.py does on SQLite: the horizon (meta `usage_pruned_before`) moves in the same
transaction as the deletes, so from then on reports take the time before it from the hourly aggregates,
and no snapshot sees a record counted twice or not at all. It only ever moves forward.
"""

from __future__ import annotations

import asyncpg

from tollgate.store.usage_sums import ACCOUNTS_PER_PRUNE


async def prune_usage(conn: asyncpg.Connection, before: int, limit: int, after: str) -> tuple[int, str | None]:
    """Delete up to `limit` records admitted before `before`, account by account from the first account id above
    `after` (inside the caller's transaction); (how many, where to go on, None when every account is done)."""
    await conn.execute(
        "INSERT INTO meta (key, value) VALUES ('usage_pruned_before', $1) ON CONFLICT (key) DO UPDATE SET"
        " value = GREATEST(meta.value::bigint, excluded.value::bigint)::text", str(before))
    deleted = 0
    for _ in range(ACCOUNTS_PER_PRUNE):
        account = await conn.fetchval(
            "SELECT account_id FROM usage_records WHERE account_id > $1 ORDER BY account_id LIMIT 1", after)
        if account is None:
            return deleted, None
        status = await conn.execute(
            "DELETE FROM usage_records WHERE id IN (SELECT id FROM usage_records"
            " WHERE account_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3)",
            account, float(before), limit - deleted)
        deleted += int(status.split()[-1])
        if deleted >= limit:
            return deleted, after
        after = account
    return deleted, after
