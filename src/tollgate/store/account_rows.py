"""Account-model rows in SQLite: the column lists the store selects, rows -> model objects, and pages of lists."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from tollgate.domain.accounts import Account, ApiKey, KeyContext, Plan, Subscription
from tollgate.store.base import UnknownCursor

PLAN_COLUMNS = (
    "slug, name, price_monthly, period_days, window_seconds, budget_per_window, rpm, tpm, models, source, retired_at"
)
SUB_COLUMNS = "id, account_id, plan_slug, status, created_at, current_period_start, current_period_end, cancel_at_period_end"
KEY_COLUMNS = (
    "id, account_id, type, name, prefix, created_at, subscription_id, budget_limit, budget_window,"
    " end_user, metadata, revoked_at, rotated_at, previous_valid_until"
)


def rows_page(conn: sqlite3.Connection, table: str, columns: str, owner: tuple[str, str] | None,
              after: str | None, limit: int | None, also: tuple[str, str] | None = None) -> list[tuple]:
    """Rows of `table` (of one owner: column, value) in (created_at, id) order: those after the row whose id is
    `after` (`UnknownCursor` if the owner has none such), at most `limit`. With an index on
    ([owner,] created_at, id) a page costs its own rows, however long the list (migration 0005).
    `also` (column, value) keeps only the owner's rows with that value too (a reseller's end user)."""
    equal = [pair for pair in (owner, also) if pair is not None]
    conditions: list[str] = [f"{column} = ?" for column, _ in equal]
    args: list[Any] = [value for _, value in equal]
    if after is not None:
        found = conn.execute(f"SELECT created_at FROM {table} WHERE {' AND '.join(['id = ?', *conditions])}",
                             [after, *args]).fetchone()
        if found is None:
            raise UnknownCursor(after)
        conditions.append("(created_at, id) > (?, ?)")
        args += [found[0], after]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {columns} FROM {table}{where} ORDER BY created_at, id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return conn.execute(sql, args).fetchall()


def plan_of(row: sqlite3.Row) -> Plan:
    return Plan(
        slug=row[0], name=row[1], price_monthly=row[2], period_days=row[3], window=row[4],
        budget_per_window=row[5], rpm=row[6], tpm=row[7],
        models=tuple(json.loads(row[8])) if row[8] else None, source=row[9], retired_at=row[10],
    )


def subscription_of(row: sqlite3.Row) -> Subscription:
    return Subscription(*row[:7], cancel_at_period_end=bool(row[7]))


def api_key_of(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row[0], account_id=row[1], type=row[2], name=row[3], prefix=row[4], created_at=row[5],
        subscription_id=row[6], budget_limit=row[7], budget_window=row[8], end_user=row[9],
        metadata=json.loads(row[10]) if row[10] else None, revoked_at=row[11], rotated_at=row[12],
        previous_valid_until=row[13],
    )


def _by_id(c: sqlite3.Connection, sql: str, ids: set[str]) -> dict[str, tuple]:
    """Rows of `sql` (`... WHERE <id> IN ({})`) for `ids`, by their first column."""
    ids_list = list(ids)
    return {row[0]: row for row in c.execute(sql.format(",".join("?" * len(ids_list))), ids_list)} if ids_list else {}


def _keys_by_hash(c: sqlite3.Connection, hashes: list[str]) -> dict[str, tuple[ApiKey, int | None]]:
    """The keys whose current secret, or whose previous secret (a rotation's grace), has one of these hashes:
    (key, None) for a current secret, (key, until when it works) for a previous one."""
    marks = ",".join("?" * len(hashes))
    found: dict[str, tuple[ApiKey, int | None]] = {
        row[0]: (api_key_of(row[1:]), None)
        for row in c.execute(f"SELECT key_hash, {KEY_COLUMNS} FROM api_keys WHERE key_hash IN ({marks})", hashes)}
    missing = [h for h in hashes if h not in found]
    if missing:  # rare: a secret replaced by a rotation, or no key at all (index api_keys_previous_hash)
        marks = ",".join("?" * len(missing))
        for row in c.execute(f"SELECT previous_hash, previous_valid_until, {KEY_COLUMNS} FROM api_keys"
                             f" WHERE previous_hash IN ({marks})", missing):
            found[row[0]] = (api_key_of(row[2:]), row[1] if row[1] is not None else 0)
    return found


def key_contexts(c: sqlite3.Connection, key_hashes: Sequence[str]) -> dict[str, KeyContext]:
    """The contexts of the keys with these hashes, by hash, in four or five queries however many there are.

    Keys of one account (subscription, plan) share one `Account` (`Subscription`, `Plan`) object:
    a reseller's thousands of keys then cost their own rows in memory, not four copies of the rest.
    A hash of a secret that a rotation replaced finds its key too, with `secret_valid_until` set.
    """
    keys = _keys_by_hash(c, list(dict.fromkeys(key_hashes)))
    accounts = {i: Account(*r) for i, r in _by_id(
        c, "SELECT id, name, created_at, credits_granted FROM accounts WHERE id IN ({})",
        {k.account_id for k, _ in keys.values()}).items()}
    subscriptions = {i: subscription_of(r) for i, r in _by_id(
        c, f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE id IN ({{}})",
        {k.subscription_id for k, _ in keys.values() if k.subscription_id}).items()}
    plans = {i: plan_of(r) for i, r in _by_id(
        c, f"SELECT {PLAN_COLUMNS} FROM plans WHERE slug IN ({{}})",
        {s.plan_slug for s in subscriptions.values()}).items()}
    found = {}
    for key_hash, (key, valid_until) in keys.items():
        subscription = subscriptions.get(key.subscription_id) if key.subscription_id else None
        plan = plans.get(subscription.plan_slug) if subscription is not None else None
        found[key_hash] = KeyContext(key, accounts[key.account_id], subscription, plan, valid_until)
    return found


def key_context(c: sqlite3.Connection, key_hash: str) -> KeyContext | None:
    """A consumption key with its account, subscription and plan: what a request is checked against."""
    return key_contexts(c, [key_hash]).get(key_hash)
