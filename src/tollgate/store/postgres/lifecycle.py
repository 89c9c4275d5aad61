"""The account lifecycle on PostgreSQL: plan edits and retirement, subscription changes, key rotation and edits,
management-key revocation, credit history.

Each check-and-change is atomic against other processes, not only other coroutines: SQLite had one
writer, PostgreSQL has many. A change that one statement can decide is one statement (its row lock
makes a second one wait and re-check, as a rotation does); one that reads a row to decide is a
transaction that reads it FOR UPDATE; and one whose check reads other rows (keep one active
management key) first locks every row the check reads, in id order, so two such changes never both pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from tollgate.domain.accounts import ApiKey, CreditGrant, Plan, Subscription
from tollgate.store.account_rows import (
    KEY_COLUMNS,
    KEY_FIELDS,
    PLAN_COLUMNS,
    PLAN_FIELDS,
    SUB_COLUMNS,
    api_key_of,
    credit_grants_query,
    plan_of,
    set_clause,
    subscription_of,
)
from tollgate.store.dialect import numbered
from tollgate.store.postgres.accounts import _PLAN_VALUES, plan_values, rows_page


def _rowcount(status: str) -> int:
    """The row count of a command tag ("UPDATE 1", "INSERT 0 1")."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresLifecycle:
    """Methods of `PostgresStore`; `_call` and `_change` are its (store.py)."""

    _call: Callable[..., Awaitable[Any]]
    _change: Callable[..., Awaitable[Any]]

    # -- plans ----------------------------------------------------------------

    async def insert_plan(self, plan: Plan) -> bool:
        """Add a plan; False (and nothing written) when its slug exists already."""
        status = await self._change(lambda c: c.execute(
            f"INSERT INTO plans ({PLAN_COLUMNS}) VALUES {_PLAN_VALUES} ON CONFLICT (slug) DO NOTHING",
            *plan_values(plan)))
        return _rowcount(status) == 1

    async def update_plan(self, slug: str, changes: Mapping[str, Any], source: str) -> Plan | None:
        """Set only `changes` of the plan `slug` if its source is `source`; the plan now, or None."""
        assignments, args = set_clause(changes, PLAN_FIELDS)
        if assignments:
            sql = numbered(f"UPDATE plans SET {assignments} WHERE slug = ? AND source = ? RETURNING {PLAN_COLUMNS}")
            row = await self._change(lambda c: c.fetchrow(sql, *args, slug, source))
        else:
            row = await self._call(lambda c: c.fetchrow(
                f"SELECT {PLAN_COLUMNS} FROM plans WHERE slug = $1 AND source = $2", slug, source))
        return plan_of(row) if row else None

    async def set_plan_retired(self, slug: str, at: int | None) -> Plan | None:
        """Retire the plan at `at` (kept if it was retired already), or with None bring it back; None: no such plan."""
        async def retire(c: asyncpg.Connection) -> asyncpg.Record | None:
            if at is None:
                await c.execute("UPDATE plans SET retired_at = NULL WHERE slug = $1 AND retired_at IS NOT NULL", slug)
            else:
                await c.execute("UPDATE plans SET retired_at = $1 WHERE slug = $2 AND retired_at IS NULL", at, slug)
            return await c.fetchrow(f"SELECT {PLAN_COLUMNS} FROM plans WHERE slug = $1", slug)

        row = await self._change(retire)
        return plan_of(row) if row else None

    # -- subscriptions ------------------------------------------------------------

    async def modify_subscription(self, subscription_id: str,
                                  change: Callable[[Subscription], Subscription]) -> Subscription | None:
        """Read the subscription FOR UPDATE, write `change(it)`, in one transaction (a refusal raised by `change`
        rolls it back); the subscription written, or None when there is none. `change` must be quick and pure."""
        async def modify(c: asyncpg.Connection) -> Subscription | None:
            row = await c.fetchrow(f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = $1 FOR UPDATE", subscription_id)
            if row is None:
                return None
            s = change(subscription_of(row))
            await c.execute("UPDATE subscriptions SET status = $1, current_period_start = $2, current_period_end = $3,"
                            " cancel_at_period_end = $4 WHERE id = $5",
                            s.status, s.current_period_start, s.current_period_end, int(s.cancel_at_period_end), s.id)
            return s

        return await self._change(modify)

    # -- consumption keys -----------------------------------------------------------

    async def rotate_api_key(self, key_id: str, new_hash: str, new_prefix: str, at: int,
                             previous_valid_until: int | None) -> bool:
        """A new secret for an active key, in one statement: a concurrent rotation waits for its row lock and then
        rotates the secret this one set. False: no such active key."""
        status = await self._change(lambda c: c.execute(
            "UPDATE api_keys SET previous_hash = CASE WHEN $1::bigint IS NULL THEN NULL ELSE key_hash END,"
            " previous_valid_until = $1, key_hash = $2, prefix = $3, rotated_at = $4"
            " WHERE id = $5 AND revoked_at IS NULL",
            previous_valid_until, new_hash, new_prefix, at, key_id))
        return _rowcount(status) == 1

    async def update_api_key(self, key_id: str, changes: Mapping[str, Any]) -> ApiKey | None:
        """Set only `changes` (name, end_user, metadata; None clears the last two); the key now."""
        assignments, args = set_clause(changes, KEY_FIELDS)
        if assignments:
            sql = numbered(f"UPDATE api_keys SET {assignments} WHERE id = ? RETURNING {KEY_COLUMNS}")
            row = await self._change(lambda c: c.fetchrow(sql, *args, key_id))
        else:
            row = await self._call(lambda c: c.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id))
        return api_key_of(row) if row else None

    async def list_end_user_keys(self, account_id: str, end_user: str, after: str | None = None,
                                 limit: int | None = None) -> list[ApiKey]:
        rows = await self._call(lambda c: rows_page(
            c, "api_keys", KEY_COLUMNS, [("account_id", account_id), ("end_user", end_user)], after, limit))
        return [api_key_of(r) for r in rows]

    # -- management keys --------------------------------------------------------------

    async def revoke_management_key_of(self, account_id: str, key_id: str, at: int, keep_one: bool) -> bool:
        """Revoke the account's active management key `key_id`; with `keep_one` only while another stays active.
        The account's active keys are locked first (in id order), so two revocations cannot both see the other
        one's key still active. False when nothing was revoked."""
        async def revoke(c: asyncpg.Connection) -> bool:
            active = [row[0] for row in await c.fetch(
                "SELECT id FROM management_keys WHERE account_id = $1 AND revoked_at IS NULL ORDER BY id FOR UPDATE",
                account_id)]
            if key_id not in active or (keep_one and len(active) < 2):
                return False
            await c.execute("UPDATE management_keys SET revoked_at = $1 WHERE id = $2", at, key_id)
            return True

        return await self._change(revoke)

    # -- credits ----------------------------------------------------------------------

    async def list_credit_grants(self, account_id: str, after: int | None = None,
                                 limit: int | None = None) -> list[CreditGrant]:
        """The account's credit grants oldest first (by grant id), those after grant `after`."""
        sql, args = credit_grants_query(account_id, after, limit)
        rows = await self._call(lambda c: c.fetch(numbered(sql), *args))
        return [CreditGrant(*r) for r in rows]
