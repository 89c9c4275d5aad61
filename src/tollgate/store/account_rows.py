"""Account-model rows for both stores: the column lists selected, rows -> model objects, the SQL of pages of lists
and of partial updates (with `?` placeholders; the PostgreSQL store numbers them), and SQLite's page reader."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
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


Query = tuple[str, list[Any]]  # SQL with `?` placeholders, and its arguments (store/dialect.py numbers them)

# Plan fields a partial update may set, and their columns.
PLAN_FIELDS = {"name": "name", "price_monthly": "price_monthly", "period_days": "period_days",
               "window": "window_seconds", "budget_per_window": "budget_per_window", "rpm": "rpm", "tpm": "tpm",
               "models": "models"}
# Key fields an owner may change after creation, and their columns.
KEY_FIELDS = {"name": "name", "end_user": "end_user", "metadata": "metadata"}


def set_clause(changes: Mapping[str, Any], columns: Mapping[str, str]) -> tuple[str, list[Any]]:
    """`col = ?, ...` for the fields in `changes` (each must be one of `columns`), JSON for lists and dicts."""
    parts, args = [], []
    for field, value in changes.items():
        parts.append(f"{columns[field]} = ?")
        args.append(json.dumps(list(value) if isinstance(value, tuple) else value)
                    if isinstance(value, (tuple, list, dict)) else value)
    return ", ".join(parts), args


def page_cursor_query(table: str, equal: Sequence[tuple[str, Any]], after: str) -> Query:
    """The query for the `created_at` of the row a page's cursor names (of the owner: `equal` pairs)."""
    conditions = ["id = ?", *(f"{column} = ?" for column, _ in equal)]
    return f"SELECT created_at FROM {table} WHERE {' AND '.join(conditions)}", [after, *(v for _, v in equal)]


def page_query(table: str, columns: str, equal: Sequence[tuple[str, Any]], after: tuple[Any, str] | None,
               limit: int | None) -> Query:
    """A page of `table`'s rows with the `equal` (column, value) pairs in (created_at, id) order, after the row
    `after` (its created_at and id), at most `limit`. With an index on ([owner,] created_at, id) a page
    costs its own rows, however long the list (migration 0005)."""
    conditions: list[str] = [f"{column} = ?" for column, _ in equal]
    args: list[Any] = [value for _, value in equal]
    if after is not None:
        conditions.append("(created_at, id) > (?, ?)")
        args += list(after)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {columns} FROM {table}{where} ORDER BY created_at, id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


def credit_grants_query(account_id: str, after: int | None, limit: int | None) -> Query:
    """The account's credit grants oldest first (by grant id, which only grows), those after grant `after`."""
    sql = "SELECT id, account_id, amount, note, created_at FROM credit_grants WHERE account_id = ?"
    args: list[Any] = [account_id]
    if after is not None:
        sql += " AND id > ?"
        args.append(after)
    sql += " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


def rows_page(conn: sqlite3.Connection, table: str, columns: str, owner: tuple[str, str] | None,
              after: str | None, limit: int | None, also: tuple[str, str] | None = None) -> list[tuple]:
    """Rows of `table` (of one owner: column, value) in (created_at, id) order: those after the row whose id is
    `after` (`UnknownCursor` if the owner has none such), at most `limit` (`page_query`).
    `also` (column, value) keeps only the owner's rows with that value too (a reseller's end user)."""
    equal = [pair for pair in (owner, also) if pair is not None]
    cursor = None
    if after is not None:
        found = conn.execute(*page_cursor_query(table, equal, after)).fetchone()
        if found is None:
            raise UnknownCursor(after)
        cursor = (found[0], after)
    return conn.execute(*page_query(table, columns, equal, cursor, limit)).fetchall()


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


def key_row(k: ApiKey, key_hash: str) -> tuple:
    """A new key's row, in `api_keys`' insert order: id, account_id, type, name, prefix, created_at, subscription_id,
    budget_limit, budget_window, end_user, metadata (JSON), key_hash."""
    return (k.id, k.account_id, k.type, k.name, k.prefix, k.created_at, k.subscription_id, k.budget_limit,
            k.budget_window, k.end_user, json.dumps(k.metadata) if k.metadata is not None else None, key_hash)
