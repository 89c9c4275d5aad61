"""The embedded store's account-lifecycle writes and reads: rotation, plan edits, management keys, credit history,
end users.

A part of `SQLiteStore` kept in its own module (`SQLiteStore` inherits it) so that the store's main file
stays about plumbing and the ledger. Every method runs its SQL on the store's database thread
(`_run`, `_ledger_read`), and every change to the account model through `_change`, which publishes
the change counter: the 0008 triggers log each changed key and plan, so every gateway process drops
exactly the cached contexts a change touches. Each write that must check a state and change it does
both in one statement or one transaction, so two operators (or the CLI and the API) cannot interleave.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from tollgate.domain.accounts import ApiKey, CreditGrant, Plan, Subscription
from tollgate.domain.spend import SpendSummary
from tollgate.store import usage_by_end_user
from tollgate.store.account_rows import (
    KEY_COLUMNS,
    KEY_FIELDS,
    PLAN_COLUMNS,
    PLAN_FIELDS,
    SUB_COLUMNS,
    api_key_of,
    credit_grants_query,
    plan_of,
    rows_page,
    set_clause,
    subscription_of,
)


class SQLiteLifecycle:
    """Methods of `SQLiteStore` (see the module docstring); `_run`, `_change`, `_tx` and `_ledger_read` are its."""

    _run: Callable[..., Any]
    _change: Callable[..., Any]
    _tx: Callable[..., Any]
    _ledger_read: Callable[..., Any]
    _report_read: Callable[..., Any]  # reads for people, on the read thread (store/reader.py)

    # -- plans ----------------------------------------------------------------

    async def insert_plan(self, plan: Plan) -> bool:
        """Add a plan; False (and nothing written) when its slug exists already."""
        models = json.dumps(list(plan.models)) if plan.models is not None else None
        values = (plan.slug, plan.name, plan.price_monthly, plan.period_days, plan.window, plan.budget_per_window,
                  plan.rpm, plan.tpm, models, plan.source, plan.retired_at)
        cursor = await self._change(lambda c: c.execute(
            f"INSERT INTO plans ({PLAN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(slug) DO NOTHING", values))
        return cursor.rowcount == 1

    async def update_plan(self, slug: str, changes: Mapping[str, Any], source: str) -> Plan | None:
        """Set only the fields in `changes` (Plan field names) of the plan `slug` if its source is `source`;
        the plan as it is now, or None when there is no such plan (of that source)."""
        assignments, args = set_clause(changes, PLAN_FIELDS)

        def update(c: sqlite3.Connection) -> Plan | None:
            if assignments:
                c.execute(f"UPDATE plans SET {assignments} WHERE slug = ? AND source = ?", [*args, slug, source])
            row = c.execute(f"SELECT {PLAN_COLUMNS} FROM plans WHERE slug = ? AND source = ?", (slug, source)).fetchone()
            return plan_of(row) if row else None

        return await self._change(self._tx(update))

    async def set_plan_retired(self, slug: str, at: int | None) -> Plan | None:
        """Retire the plan at `at` (kept if it was retired already), or with None bring it back; None: no such plan."""
        def retire(c: sqlite3.Connection) -> Plan | None:
            if at is None:
                c.execute("UPDATE plans SET retired_at = NULL WHERE slug = ? AND retired_at IS NOT NULL", (slug,))
            else:
                c.execute("UPDATE plans SET retired_at = ? WHERE slug = ? AND retired_at IS NULL", (at, slug))
            row = c.execute(f"SELECT {PLAN_COLUMNS} FROM plans WHERE slug = ?", (slug,)).fetchone()
            return plan_of(row) if row else None

        return await self._change(self._tx(retire))

    # -- subscriptions ----------------------------------------------------------

    async def modify_subscription(self, subscription_id: str,
                                  change: Callable[[Subscription], Subscription]) -> Subscription | None:
        """Read the subscription, write `change(it)`, in one transaction (a refusal raised by `change` writes
        nothing); the subscription written, or None when there is none. `change` runs on the database thread:
        it must be quick and pure (domain rules, no I/O)."""
        def modify(c: sqlite3.Connection) -> Subscription | None:
            row = c.execute(f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone()
            if row is None:
                return None
            s = change(subscription_of(row))
            c.execute("UPDATE subscriptions SET status = ?, current_period_start = ?, current_period_end = ?,"
                      " cancel_at_period_end = ? WHERE id = ?",
                      (s.status, s.current_period_start, s.current_period_end, int(s.cancel_at_period_end), s.id))
            return s

        return await self._change(self._tx(modify))

    # -- consumption keys -------------------------------------------------------

    async def rotate_api_key(self, key_id: str, new_hash: str, new_prefix: str, at: int,
                             previous_valid_until: int | None) -> bool:
        """Give an active key a new secret (hash and prefix); the old one keeps working until `previous_valid_until`
        (None: not at all). A secret still in an earlier rotation's grace stops now. False: no such active key."""
        cursor = await self._change(lambda c: c.execute(
            "UPDATE api_keys SET previous_hash = CASE WHEN ? IS NULL THEN NULL ELSE key_hash END,"
            " previous_valid_until = ?, key_hash = ?, prefix = ?, rotated_at = ? WHERE id = ? AND revoked_at IS NULL",
            (previous_valid_until, previous_valid_until, new_hash, new_prefix, at, key_id)))
        return cursor.rowcount == 1

    async def update_api_key(self, key_id: str, changes: Mapping[str, Any]) -> ApiKey | None:
        """Set only the fields in `changes` (name, end_user, metadata; None clears the last two); the key now."""
        assignments, args = set_clause(changes, KEY_FIELDS)

        def update(c: sqlite3.Connection) -> ApiKey | None:
            if assignments:
                c.execute(f"UPDATE api_keys SET {assignments} WHERE id = ?", [*args, key_id])
            row = c.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            return api_key_of(row) if row else None

        return await self._change(self._tx(update))

    async def list_end_user_keys(self, account_id: str, end_user: str, after: str | None = None,
                                 limit: int | None = None) -> list[ApiKey]:
        """The account's keys of one end user, as `list_api_keys` pages them."""
        return await self._run(lambda c: [api_key_of(r) for r in rows_page(
            c, "api_keys", KEY_COLUMNS, ("account_id", account_id), after, limit, also=("end_user", end_user))])

    # -- management keys --------------------------------------------------------

    async def revoke_management_key_of(self, account_id: str, key_id: str, at: int, keep_one: bool) -> bool:
        """Revoke the account's active management key `key_id`; with `keep_one`, only while another active key
        of the account remains (checked in the same statement). False when nothing was revoked."""
        keep = (" AND EXISTS (SELECT 1 FROM management_keys o WHERE o.account_id = management_keys.account_id"
                " AND o.id != management_keys.id AND o.revoked_at IS NULL)") if keep_one else ""
        cursor = await self._change(lambda c: c.execute(
            "UPDATE management_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL" + keep,
            (at, key_id, account_id)))
        return cursor.rowcount == 1

    # -- credits ----------------------------------------------------------------

    async def list_credit_grants(self, account_id: str, after: int | None = None,
                                 limit: int | None = None) -> list[CreditGrant]:
        """The account's credit grants oldest first (by grant id, which only grows), those after grant `after`."""
        sql, args = credit_grants_query(account_id, after, limit)
        return await self._run(lambda c: [CreditGrant(*r) for r in c.execute(sql, args)])

    # -- usage by end user --------------------------------------------------------

    async def usage_by_end_user(self, account_id: str, since: float | None, until: float | None,
                                end_user: str | None = None) -> list[usage_by_end_user.EndUserSpend]:
        """Spend in [since, until) per end-user label of the account's keys (see `usage_by_end_user`)."""
        return await self._report_read(
            lambda c: usage_by_end_user.spend_by_end_user(c, account_id, since, until, end_user), account_id)

    async def end_user_summary(self, account_id: str, end_user: str, since: float | None,
                               until: float | None) -> SpendSummary:
        """`usage_summary(per_key=True)` of only the keys labelled `end_user` (see `usage_by_end_user`)."""
        return await self._report_read(
            lambda c: usage_by_end_user.end_user_summary(c, account_id, end_user, since, until), account_id)
