"""The account model on PostgreSQL: plans, accounts and credits, management keys, subscriptions, API keys.

Rows become model objects through the converters SQLite's store uses (store/account_rows.py), over
the same column lists. Every change runs through `_change` (store.py): one transaction that also
reads the change-log number its triggers took, so this process sees its own change at once and
every other process within a poll (changes.py). A key's context (key, account, subscription, plan)
is one joined query however many keys a batch asks for; it runs with the request path's short
timeout, so a database that is down answers "unavailable" quickly and cached keys keep working.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from tollgate.domain.accounts import Account, ApiKey, KeyContext, ManagementKey, Plan, Subscription
from tollgate.store.account_rows import (
    KEY_COLUMNS,
    PLAN_COLUMNS,
    SUB_COLUMNS,
    api_key_of,
    key_row,
    page_cursor_query,
    page_query,
    plan_of,
    subscription_of,
)
from tollgate.store.base import UnknownCursor
from tollgate.store.dialect import numbered

ACCOUNT_COLUMNS = "id, name, created_at, credits_granted"
MANAGEMENT_COLUMNS = "id, account_id, name, prefix, created_at, revoked_at"
_PLAN_VALUES = "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
# Keys per statement of a bulk insert (one transaction in all): bounded arrays, however many keys.
KEYS_PER_STATEMENT = 20_000


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


_N_KEY, _N_ACCOUNT, _N_SUB = (len(c.split(",")) for c in (KEY_COLUMNS, ACCOUNT_COLUMNS, SUB_COLUMNS))
_CONTEXTS = (
    f"SELECT {_prefixed('k', KEY_COLUMNS)}, {_prefixed('a', ACCOUNT_COLUMNS)}, {_prefixed('s', SUB_COLUMNS)},"
    f" {_prefixed('p', PLAN_COLUMNS)}, k.key_hash, k.previous_hash"
    " FROM api_keys k JOIN accounts a ON a.id = k.account_id"
    " LEFT JOIN subscriptions s ON s.id = k.subscription_id LEFT JOIN plans p ON p.slug = s.plan_slug"
    " WHERE k.key_hash = ANY($1::text[]) OR k.previous_hash = ANY($1::text[])"
)
_KEY_INSERT = (
    "INSERT INTO api_keys (id, account_id, type, name, prefix, created_at, subscription_id, budget_limit,"
    " budget_window, end_user, metadata, key_hash) SELECT * FROM unnest($1::text[], $2::text[], $3::text[],"
    " $4::text[], $5::text[], $6::int8[], $7::text[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::text[])"
)


def plan_values(plan: Plan) -> tuple:
    models = json.dumps(list(plan.models)) if plan.models is not None else None
    return (plan.slug, plan.name, plan.price_monthly, plan.period_days, plan.window, plan.budget_per_window,
            plan.rpm, plan.tpm, models, plan.source, plan.retired_at)


_ACCOUNT = slice(_N_KEY, _N_KEY + _N_ACCOUNT)
_SUB = slice(_ACCOUNT.stop, _ACCOUNT.stop + _N_SUB)
_PLAN = slice(_SUB.stop, -2)


def contexts_of(rows: Sequence[asyncpg.Record], wanted: set[str]) -> dict[str, KeyContext]:
    """Contexts by the hash asked for; records of one account (subscription, plan) shared, as SQLite's store does.
    A current secret wins over a rotation's previous one with the same hash."""
    shared: dict[tuple[str, str], Any] = {}

    def one(kind: str, part: tuple, make: Callable[[tuple], Any]) -> Any:
        found = shared.get((kind, part[0]))
        if found is None:
            found = shared[(kind, part[0])] = make(part)
        return found

    current: dict[str, KeyContext] = {}
    previous: dict[str, KeyContext] = {}
    for record in rows:
        row = tuple(record)
        key = api_key_of(row[:_N_KEY])
        account = one("account", row[_ACCOUNT], lambda part: Account(*part))
        subscription = one("subscription", row[_SUB], subscription_of) if row[_SUB.start] is not None else None
        plan = one("plan", row[_PLAN], plan_of) if row[_PLAN.start] is not None else None
        key_hash, previous_hash = row[-2], row[-1]
        if key_hash in wanted:
            current[key_hash] = KeyContext(key, account, subscription, plan, None)
        if previous_hash in wanted:
            until = key.previous_valid_until if key.previous_valid_until is not None else 0
            previous[previous_hash] = KeyContext(key, account, subscription, plan, until)
    return {**previous, **current}


async def rows_page(conn: asyncpg.Connection, table: str, columns: str, equal: Sequence[tuple[str, Any]],
                    after: str | None, limit: int | None) -> list[asyncpg.Record]:
    """account_rows.rows_page on PostgreSQL: the same queries (`page_cursor_query`, `page_query`), numbered."""
    cursor = None
    if after is not None:
        sql, args = page_cursor_query(table, equal, after)
        found = await conn.fetchrow(numbered(sql), *args)
        if found is None:
            raise UnknownCursor(after)
        cursor = (found[0], after)
    sql, args = page_query(table, columns, equal, cursor, limit)
    return await conn.fetch(numbered(sql), *args)


class PostgresAccounts:
    """Methods of `PostgresStore`; `_call`, `_request` and `_change` are its (store.py)."""

    _call: Callable[..., Awaitable[Any]]
    _request: Callable[..., Awaitable[Any]]
    _change: Callable[..., Awaitable[Any]]

    # -- plans ----------------------------------------------------------------

    async def upsert_plan(self, plan: Plan) -> None:
        """An existing plan keeps its retirement (set only by `set_plan_retired`); an unchanged one is not written."""
        await self._change(lambda c: c.execute(
            f"INSERT INTO plans ({PLAN_COLUMNS}) VALUES {_PLAN_VALUES} ON CONFLICT (slug) DO UPDATE SET"
            " name = excluded.name, price_monthly = excluded.price_monthly, period_days = excluded.period_days,"
            " window_seconds = excluded.window_seconds, budget_per_window = excluded.budget_per_window,"
            " rpm = excluded.rpm, tpm = excluded.tpm, models = excluded.models, source = excluded.source"
            " WHERE (plans.name, plans.price_monthly, plans.period_days, plans.window_seconds,"
            " plans.budget_per_window, plans.rpm, plans.tpm, plans.models, plans.source) IS DISTINCT FROM"
            " (excluded.name, excluded.price_monthly, excluded.period_days, excluded.window_seconds,"
            " excluded.budget_per_window, excluded.rpm, excluded.tpm, excluded.models, excluded.source)",
            *plan_values(plan)))

    async def get_plan(self, slug: str) -> Plan | None:
        row = await self._call(lambda c: c.fetchrow(f"SELECT {PLAN_COLUMNS} FROM plans WHERE slug = $1", slug))
        return plan_of(row) if row else None

    async def list_plans(self) -> list[Plan]:
        rows = await self._call(lambda c: c.fetch(f"SELECT {PLAN_COLUMNS} FROM plans ORDER BY budget_per_window, slug"))
        return [plan_of(r) for r in rows]

    # -- accounts and credits -----------------------------------------------------

    async def create_account(self, account: Account) -> None:
        await self._change(lambda c: c.execute(
            f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4)",
            account.id, account.name, account.created_at, account.credits_granted))

    async def get_account(self, account_id: str) -> Account | None:
        row = await self._call(lambda c: c.fetchrow(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1", account_id))
        return Account(*row) if row else None

    async def list_accounts(self, after: str | None = None, limit: int | None = None) -> list[Account]:
        rows = await self._call(lambda c: rows_page(c, "accounts", ACCOUNT_COLUMNS, (), after, limit))
        return [Account(*r) for r in rows]

    async def add_credits(self, account_id: str, amount: int, note: str | None, at: int) -> Account:
        async def grant(c: asyncpg.Connection) -> Account:
            # The grant first: an unknown account fails its foreign key, as on SQLite.
            await c.execute("INSERT INTO credit_grants (account_id, amount, note, created_at) VALUES ($1, $2, $3, $4)",
                            account_id, amount, note, at)
            row = await c.fetchrow("UPDATE accounts SET credits_granted = credits_granted + $1 WHERE id = $2"
                                   f" RETURNING {ACCOUNT_COLUMNS}", amount, account_id)
            return Account(*row)

        return await self._change(grant)

    # -- management keys --------------------------------------------------------------

    async def create_management_key(self, key: ManagementKey, key_hash: str) -> None:
        await self._change(lambda c: c.execute(
            "INSERT INTO management_keys (id, account_id, name, key_hash, prefix, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)", key.id, key.account_id, key.name, key_hash, key.prefix, key.created_at))

    async def find_management_key(self, key_hash: str) -> ManagementKey | None:
        row = await self._request(lambda c: c.fetchrow(
            f"SELECT {MANAGEMENT_COLUMNS} FROM management_keys WHERE key_hash = $1", key_hash))
        return ManagementKey(*row) if row else None

    async def list_management_keys(self, account_id: str) -> list[ManagementKey]:
        rows = await self._call(lambda c: c.fetch(
            f"SELECT {MANAGEMENT_COLUMNS} FROM management_keys WHERE account_id = $1 ORDER BY created_at, id",
            account_id))
        return [ManagementKey(*r) for r in rows]

    async def revoke_management_key(self, key_id: str, at: int) -> None:
        await self._change(lambda c: c.execute(
            "UPDATE management_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", at, key_id))

    # -- subscriptions --------------------------------------------------------------

    async def create_subscription(self, s: Subscription) -> None:
        await self._change(lambda c: c.execute(
            f"INSERT INTO subscriptions ({SUB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            s.id, s.account_id, s.plan_slug, s.status, s.created_at, s.current_period_start,
            s.current_period_end, int(s.cancel_at_period_end)))

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = await self._call(lambda c: c.fetchrow(
            f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = $1", subscription_id))
        return subscription_of(row) if row else None

    async def list_subscriptions(self, account_id: str) -> list[Subscription]:
        rows = await self._call(lambda c: c.fetch(
            f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE account_id = $1 ORDER BY created_at, id", account_id))
        return [subscription_of(r) for r in rows]

    async def update_subscription(self, s: Subscription) -> None:
        await self._change(lambda c: c.execute(
            "UPDATE subscriptions SET status = $1, current_period_end = $2, cancel_at_period_end = $3 WHERE id = $4",
            s.status, s.current_period_end, int(s.cancel_at_period_end), s.id))

    # -- consumption keys -------------------------------------------------------------

    async def create_api_key(self, k: ApiKey, key_hash: str) -> None:
        await self.create_api_keys([(k, key_hash)])

    async def create_api_keys(self, keys: Sequence[tuple[ApiKey, str]]) -> None:
        """All of them in one transaction, as column arrays of at most KEYS_PER_STATEMENT keys per statement."""
        rows = [key_row(k, key_hash) for k, key_hash in keys]

        async def insert(c: asyncpg.Connection) -> None:
            for start in range(0, len(rows), KEYS_PER_STATEMENT):
                await c.execute(_KEY_INSERT, *[list(col) for col in zip(*rows[start:start + KEYS_PER_STATEMENT])])

        if rows:
            await self._change(insert)

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = await self._call(lambda c: c.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id))
        return api_key_of(row) if row else None

    async def list_api_keys(self, account_id: str, after: str | None = None, limit: int | None = None) -> list[ApiKey]:
        rows = await self._call(lambda c: rows_page(c, "api_keys", KEY_COLUMNS, [("account_id", account_id)],
                                                    after, limit))
        return [api_key_of(r) for r in rows]

    async def revoke_api_key(self, key_id: str, at: int) -> None:
        await self._change(lambda c: c.execute(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", at, key_id))

    async def find_key_context(self, key_hash: str) -> KeyContext | None:
        return (await self.find_key_contexts([key_hash])).get(key_hash)

    async def find_key_contexts(self, key_hashes: Sequence[str]) -> dict[str, KeyContext]:
        """One query for the whole batch, bounded by the request path's timeout (StoreUnavailable past it)."""
        wanted = list(dict.fromkeys(key_hashes))
        if not wanted:
            return {}
        rows = await self._request(lambda c: c.fetch(_CONTEXTS, wanted))
        return contexts_of(rows, set(wanted))
