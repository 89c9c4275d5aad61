"""The request log (issue 15): pages of raw usage records, newest first, on the store's database thread.

One row per request as its usage record holds it (`usage_records`; raw records are kept for
`[ledger] usage_retention_days`, then pruned, their hourly aggregates kept). A page is read on an index,
never by scanning the table:

- scoped to an account (the management API always is) or to a key: newest first by admission time,
  then record id, on `usage_account_time` / `usage_key_time` (both hold the rowid as their last
  column, so `(created_at, id)` is the index's own order: a page costs its rows, however long the log);
- the operator's log of every account: newest first by record id (the order written), on the table's
  own key; there is no index on time alone, so `since`/`until` there filter the records walked.

The cursor (`before`) is the id of the last record of the page before: the page holds the records
after it in the page's order. Other filters (model, status, end user) narrow the rows the index walk
reads; they never change its order, so cursors stay valid whatever the filter.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.sql import USAGE_FIELDS
from tollgate.store.base import UnknownCursor

_COLUMNS = ", ".join(f"u.{name}" for name in USAGE_FIELDS)


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which records a request log page holds. `account_id` None: every account (the operator's)."""

    account_id: str | None
    key_id: str | None = None
    model: str | None = None  # the model asked for, or the model that answered
    status_min: int | None = None  # statuses in [status_min, status_max]
    status_max: int | None = None
    since: float | None = None  # admitted at or after
    until: float | None = None  # admitted before
    end_user: str | None = None  # only keys labelled so (needs `account_id`)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One row of the log: the record, its id (the cursor), and its key's name (None if the key is gone)."""

    id: int
    record: UsageRecord
    key_name: str | None


def _conditions(f: RequestFilter) -> tuple[list[str], list[Any], bool]:
    """(conditions, arguments, whether the page is in time order) for the filter."""
    conditions: list[str] = []
    args: list[Any] = []
    if f.key_id is not None:
        # `+account_id` keeps the planner on usage_key_time (one key's range), not the account's.
        if f.account_id is not None:
            conditions.append("+u.account_id = ?")
            args.append(f.account_id)
        conditions.append("u.key_id = ?")
        args.append(f.key_id)
    elif f.account_id is not None:
        conditions.append("u.account_id = ?")
        args.append(f.account_id)
    timed = f.key_id is not None or f.account_id is not None
    if f.end_user is not None:
        conditions.append("+u.key_id IN (SELECT id FROM api_keys WHERE account_id = ? AND end_user = ?)")
        args += [f.account_id, f.end_user]
    if f.model is not None:
        conditions.append("(u.model = ? OR u.upstream_model = ?)")
        args += [f.model, f.model]
    if f.status_min is not None and f.status_max is not None:
        if f.status_min >= 400 and f.account_id is not None and f.key_id is None:
            # The account's refusals and failures: on usage_account_refused, which holds only those
            # (migration 0013; SQLite takes a partial index only for its own condition, written so).
            conditions.append("u.status >= 400")
        if f.status_min == f.status_max:
            conditions.append("+u.status = ?")
            args.append(f.status_min)
        else:
            conditions.append("+u.status BETWEEN ? AND ?")
            args += [f.status_min, f.status_max]
    if f.since is not None:
        conditions.append("u.created_at >= ?")
        args.append(f.since)
    if f.until is not None:
        conditions.append("u.created_at < ?")
        args.append(f.until)
    return conditions, args, timed


def requests_page(conn: sqlite3.Connection, f: RequestFilter, before: int | None, limit: int) -> list[LoggedRequest]:
    """Up to `limit` records of the filter, newest first, after the record `before` (the page before's last
    id) in that order; `UnknownCursor` when `before` names no record of the filter's account or key."""
    conditions, args, timed = _conditions(f)
    if before is not None:
        if timed:
            scope = ("account_id = ?", f.account_id) if f.account_id is not None else ("key_id = ?", f.key_id)
            found = conn.execute(f"SELECT created_at FROM usage_records WHERE id = ? AND {scope[0]}",
                                 (before, scope[1])).fetchone()
            if found is None:
                raise UnknownCursor(str(before))
            conditions.append("(u.created_at, u.id) < (?, ?)")
            args += [found[0], before]
        else:
            conditions.append("u.id < ?")
            args.append(before)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = "u.created_at DESC, u.id DESC" if timed else "u.id DESC"
    rows = conn.execute(
        f"SELECT u.id, k.name, {_COLUMNS} FROM usage_records AS u LEFT JOIN api_keys AS k ON k.id = u.key_id"
        f" {where} ORDER BY {order} LIMIT ?", [*args, limit]).fetchall()
    return [LoggedRequest(row[0], UsageRecord(*row[2:]), row[1]) for row in rows]
