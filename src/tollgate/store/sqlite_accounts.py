"""The embedded store's account model: plans, accounts and credits, management keys, subscriptions, keys.

A part of `SQLiteStore` kept in its own module (`SQLiteStore` inherits it), beside the account
lifecycle (`sqlite_lifecycle.py`), the usage reads (`sqlite_usage.py`) and the plumbing and ledger
(`sqlite.py`). Every statement runs on the store's database thread (`_run`), but the data plane's key
lookups, on the key read thread (`_key_read`, store/reader.py); every change goes
through `_change`, which publishes the change counter, so every gateway process drops exactly the
cached contexts a change touches (the 0008 triggers log what changed).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from tollgate.domain.accounts import Account, ApiKey, KeyContext, ManagementKey, Plan, Subscription
from tollgate.store.account_rows import (
    KEY_COLUMNS,
    PLAN_COLUMNS,
    SUB_COLUMNS,
    api_key_of,
    key_context,
    key_contexts,
    key_row,
    plan_of,
    rows_page,
    subscription_of,
)


class SQLiteAccounts:
    """Methods of `SQLiteStore` (see the module docstring); `_run`, `_change` and `_tx` are its."""

    _run: Callable[..., Any]
    _key_read: Callable[..., Any]
    _change: Callable[..., Any]
    _tx: Callable[..., Any]

    # -- plans --------------------------------------------------------------

    async def upsert_plan(self, plan: Plan) -> None:
        models = json.dumps(list(plan.models)) if plan.models is not None else None
        values = (plan.slug, plan.name, plan.price_monthly, plan.period_days, plan.window,
                  plan.budget_per_window, plan.rpm, plan.tpm, models, plan.source, plan.retired_at)
        # An existing plan keeps its retirement (set only by `set_plan_retired`), config plans across restarts too.
        await self._change(lambda c: c.execute(
            f"INSERT INTO plans ({PLAN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(slug) DO UPDATE SET"
            " name=excluded.name, price_monthly=excluded.price_monthly, period_days=excluded.period_days,"
            " window_seconds=excluded.window_seconds, budget_per_window=excluded.budget_per_window,"
            " rpm=excluded.rpm, tpm=excluded.tpm, models=excluded.models, source=excluded.source"
            " WHERE (plans.name, plans.price_monthly, plans.period_days, plans.window_seconds,"
            " plans.budget_per_window, plans.rpm, plans.tpm, plans.models, plans.source) IS NOT"
            " (excluded.name, excluded.price_monthly, excluded.period_days, excluded.window_seconds,"
            " excluded.budget_per_window, excluded.rpm, excluded.tpm, excluded.models, excluded.source)",
            values,
        ))

    async def get_plan(self, slug: str) -> Plan | None:
        row = await self._run(lambda c: c.execute(f"SELECT {PLAN_COLUMNS} FROM plans WHERE slug = ?", (slug,)).fetchone())
        return plan_of(row) if row else None

    async def list_plans(self) -> list[Plan]:
        rows = await self._run(lambda c: c.execute(f"SELECT {PLAN_COLUMNS} FROM plans ORDER BY budget_per_window, slug").fetchall())
        return [plan_of(r) for r in rows]

    # -- accounts and credits ----------------------------------------------

    async def create_account(self, account: Account) -> None:
        await self._change(lambda c: c.execute(
            "INSERT INTO accounts (id, name, created_at, credits_granted) VALUES (?, ?, ?, ?)",
            (account.id, account.name, account.created_at, account.credits_granted),
        ))

    async def get_account(self, account_id: str) -> Account | None:
        row = await self._run(lambda c: c.execute(
            "SELECT id, name, created_at, credits_granted FROM accounts WHERE id = ?", (account_id,)).fetchone())
        return Account(*row) if row else None

    async def list_accounts(self, after: str | None = None, limit: int | None = None) -> list[Account]:
        return await self._run(lambda c: [
            Account(*r) for r in rows_page(c, "accounts", "id, name, created_at, credits_granted", None, after, limit)])

    async def add_credits(self, account_id: str, amount: int, note: str | None, at: int) -> Account:
        def grant(c: sqlite3.Connection) -> Account:
            c.execute("UPDATE accounts SET credits_granted = credits_granted + ? WHERE id = ?", (amount, account_id))
            c.execute("INSERT INTO credit_grants (account_id, amount, note, created_at) VALUES (?, ?, ?, ?)",
                      (account_id, amount, note, at))
            row = c.execute("SELECT id, name, created_at, credits_granted FROM accounts WHERE id = ?", (account_id,)).fetchone()
            return Account(*row)

        return await self._change(self._tx(grant))

    # -- management keys ----------------------------------------------------

    async def create_management_key(self, key: ManagementKey, key_hash: str) -> None:
        await self._change(lambda c: c.execute(
            "INSERT INTO management_keys (id, account_id, name, key_hash, prefix, created_at) VALUES (?,?,?,?,?,?)",
            (key.id, key.account_id, key.name, key_hash, key.prefix, key.created_at),
        ))

    async def find_management_key(self, key_hash: str) -> ManagementKey | None:
        row = await self._run(lambda c: c.execute(
            "SELECT id, account_id, name, prefix, created_at, revoked_at FROM management_keys WHERE key_hash = ?",
            (key_hash,)).fetchone())
        return ManagementKey(*row) if row else None

    async def list_management_keys(self, account_id: str) -> list[ManagementKey]:
        rows = await self._run(lambda c: c.execute(
            "SELECT id, account_id, name, prefix, created_at, revoked_at FROM management_keys"
            " WHERE account_id = ? ORDER BY created_at, id", (account_id,)).fetchall())
        return [ManagementKey(*r) for r in rows]

    async def revoke_management_key(self, key_id: str, at: int) -> None:
        await self._change(lambda c: c.execute(
            "UPDATE management_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, key_id)))

    # -- subscriptions ------------------------------------------------------

    async def create_subscription(self, s: Subscription) -> None:
        await self._change(lambda c: c.execute(
            f"INSERT INTO subscriptions ({SUB_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            (s.id, s.account_id, s.plan_slug, s.status, s.created_at, s.current_period_start,
             s.current_period_end, int(s.cancel_at_period_end)),
        ))

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = await self._run(lambda c: c.execute(
            f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone())
        return subscription_of(row) if row else None

    async def list_subscriptions(self, account_id: str) -> list[Subscription]:
        rows = await self._run(lambda c: c.execute(
            f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE account_id = ? ORDER BY created_at, id",
            (account_id,)).fetchall())
        return [subscription_of(r) for r in rows]

    async def update_subscription(self, s: Subscription) -> None:
        await self._change(lambda c: c.execute(
            "UPDATE subscriptions SET status = ?, current_period_end = ?, cancel_at_period_end = ? WHERE id = ?",
            (s.status, s.current_period_end, int(s.cancel_at_period_end), s.id),
        ))

    # -- consumption keys ---------------------------------------------------

    async def create_api_key(self, k: ApiKey, key_hash: str) -> None:
        await self.create_api_keys([(k, key_hash)])

    async def create_api_keys(self, keys: Sequence[tuple[ApiKey, str]]) -> None:
        rows = [key_row(k, key_hash) for k, key_hash in keys]
        await self._change(self._tx(lambda c: c.executemany(
            "INSERT INTO api_keys (id, account_id, type, name, prefix, created_at, subscription_id, budget_limit,"
            " budget_window, end_user, metadata, key_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)))

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = await self._run(lambda c: c.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone())
        return api_key_of(row) if row else None

    async def list_api_keys(self, account_id: str, after: str | None = None, limit: int | None = None) -> list[ApiKey]:
        return await self._run(lambda c: [
            api_key_of(r) for r in rows_page(c, "api_keys", KEY_COLUMNS, ("account_id", account_id), after, limit)])

    async def revoke_api_key(self, key_id: str, at: int) -> None:
        await self._change(lambda c: c.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, key_id)))

    async def find_key_context(self, key_hash: str) -> KeyContext | None:
        return await self._key_read(lambda c: key_context(c, key_hash))

    async def find_key_contexts(self, key_hashes: Sequence[str]) -> dict[str, KeyContext]:
        return await self._key_read(lambda c: key_contexts(c, key_hashes))
