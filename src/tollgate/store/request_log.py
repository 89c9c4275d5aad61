"""The request log (issue 15): pages of raw usage records, newest first, on the store's database thread.

One row per request as its usage record holds it (`usage_records`; raw records are kept for
`[ledger] usage_retention_days`, then pruned, their hourly aggregates kept). A page is read on an index,
never by scanning the table:

- scoped to an account (the management API always is) or to a key: newest first by admission time,
  then record id, on `usage_account_time` / `usage_key_time` (both hold the rowid as their last
  column, so `(created_at, id)` is the index's own order: a page costs its rows, however long the log);
- an account's refusals and failures (a status filter of 400 or more): on `usage_account_refused`,
  which holds only those (migration 0013), a key's among them;
- the operator's log of every account: newest first by record id (the order written), on the table's
  own key; there is no index on time alone, so `since`/`until` there filter the records walked.

Other filters (model, status, end user) narrow the rows the index walk reads; they never change its
order. A filter that matches rarely would walk far (a model not used since 300,000 requests: 90-470
ms), so a page reads at most `SCAN_ROWS` records of its walk: when the walk reaches that bound before
the page is full, the page is short and says where it stopped (`LogPage.stopped_at`, the API's
`hasMore` and `nextCursor`), as DynamoDB's pages do. The bound is found first on the index alone
(`scan_end_query`), then the page reads up to it.

The cursor (`before`) is the id of the last record the page before read: its last row, or where its
walk stopped; the page holds the records after it in the page's order, so walking the pages gives every
record of the filter exactly once, whatever the filter.

The builders here serve both stores (the same SQL; `Dialect` gives SQLite its planner hints):
`requests_page` runs them on SQLite's database thread, `postgres/request_log.py` on asyncpg.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.sql import USAGE_FIELDS
from tollgate.store.base import SCAN_ROWS, UnknownCursor
from tollgate.store.dialect import SQLITE, Dialect, Query

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


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a filter's page is read: `scope` picks the index walked (its rows in the page's order), `checks`
    hold for all of them or none (a key's account), `filters` thin the walk; `timed`: in (created_at, id)
    order, else in id order (the operator's log of every account)."""

    scope: list[str]
    scope_args: list[Any]
    checks: list[str]
    check_args: list[Any]
    filters: list[str]
    filter_args: list[Any]
    timed: bool


def _plan(d: Dialect, f: RequestFilter) -> _Plan:
    scope: list[str] = []
    scope_args: list[Any] = []
    checks: list[str] = []
    check_args: list[Any] = []
    filters: list[str] = []
    filter_args: list[Any] = []
    if f.status_min is not None and f.status_min >= 400 and f.account_id is not None:
        # The account's refusals and failures: on usage_account_refused, which holds only those (migration
        # 0013; SQLite takes a partial index only for its own condition, written so), a key's among them.
        scope += ["u.account_id = ?", "u.status >= 400"]
        scope_args.append(f.account_id)
        if f.key_id is not None:
            filters.append(f"{d.hint('u.key_id')} = ?")
            filter_args.append(f.key_id)
    elif f.key_id is not None:
        scope.append("u.key_id = ?")
        scope_args.append(f.key_id)
        if f.account_id is not None:
            # SQLite: `+account_id` keeps the planner on usage_key_time (one key's range), not the account's.
            checks.append(f"{d.hint('u.account_id')} = ?")
            check_args.append(f.account_id)
    elif f.account_id is not None:
        scope.append("u.account_id = ?")
        scope_args.append(f.account_id)
    timed = f.key_id is not None or f.account_id is not None
    times, time_args = (scope, scope_args) if timed else (filters, filter_args)  # no index on time alone
    if f.since is not None:
        times.append("u.created_at >= ?")
        time_args.append(f.since)
    if f.until is not None:
        times.append("u.created_at < ?")
        time_args.append(f.until)
    if f.end_user is not None:
        filters.append(f"{d.hint('u.key_id')} IN (SELECT id FROM api_keys WHERE account_id = ? AND end_user = ?)")
        filter_args += [f.account_id, f.end_user]
    if f.model is not None:
        filters.append("(u.model = ? OR u.upstream_model = ?)")
        filter_args += [f.model, f.model]
    if f.status_min is not None and f.status_max is not None:
        if f.status_min == f.status_max:
            filters.append(f"{d.hint('u.status')} = ?")
            filter_args.append(f.status_min)
        else:
            filters.append(f"{d.hint('u.status')} BETWEEN ? AND ?")
            filter_args += [f.status_min, f.status_max]
    return _Plan(scope, scope_args, checks, check_args, filters, filter_args, timed)


def cursor_query(f: RequestFilter, before: int | None) -> Query | None:
    """The admission time of the cursor's record, if it is the filter's account's (or key's); None when the
    page needs no lookup (no cursor, or the operator's log in id order). No row: `UnknownCursor`."""
    if before is None or (f.account_id is None and f.key_id is None):
        return None
    column, value = ("account_id", f.account_id) if f.account_id is not None else ("key_id", f.key_id)
    return f"SELECT created_at FROM usage_records WHERE id = ? AND {column} = ?", [before, value]


def _after(plan: _Plan, before: int | None, before_created_at: float | None) -> tuple[list[str], list[Any]]:
    """The cursor's condition: the rows after the record `before` in the page's order."""
    if before is None:
        return [], []
    if plan.timed:
        return ["(u.created_at, u.id) < (?, ?)"], [before_created_at, before]
    return ["u.id < ?"], [before]


def _order(plan: _Plan) -> str:
    return "u.created_at DESC, u.id DESC" if plan.timed else "u.id DESC"


def scan_end_query(d: Dialect, f: RequestFilter, before: int | None, before_created_at: float | None,
                   scan: int) -> Query | None:
    """The last row (created_at, id) a page may read: the `scan`-th of its walk (the records of the filter's
    scope after the cursor, in the page's order; an index alone, no record read). None when the page reads
    only rows it keeps (no filter thins its walk): such a page costs its own rows. No row: the walk ends first."""
    plan = _plan(d, f)
    if not plan.filters:
        return None
    after, after_args = _after(plan, before, before_created_at)
    conditions = [*plan.scope, *after]
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return (f"SELECT u.created_at, u.id FROM usage_records AS u {where} ORDER BY {_order(plan)} LIMIT 1 OFFSET ?",
            [*plan.scope_args, *after_args, scan - 1])


def page_query(d: Dialect, f: RequestFilter, before: int | None, before_created_at: float | None,
               limit: int, scan_end: tuple[float, int] | None = None) -> Query:
    """Rows (id, key name, *record fields) of the page after the record `before` (admitted at
    `before_created_at`, as `cursor_query` found it, for a page in time order), up to the row `scan_end`
    (`scan_end_query`'s; None: as far as the log goes)."""
    plan = _plan(d, f)
    after, after_args = _after(plan, before, before_created_at)
    conditions = [*plan.scope, *plan.checks, *plan.filters, *after]
    args = [*plan.scope_args, *plan.check_args, *plan.filter_args, *after_args]
    if scan_end is not None:
        if plan.timed:  # the plain bound ends the index range; the row value settles ties
            conditions += ["u.created_at >= ?", "(u.created_at, u.id) >= (?, ?)"]
            args += [scan_end[0], scan_end[0], scan_end[1]]
        else:
            conditions.append("u.id >= ?")
            args.append(scan_end[1])
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return (f"SELECT u.id, k.name, {_COLUMNS} FROM usage_records AS u LEFT JOIN api_keys AS k ON k.id = u.key_id"
            f" {where} ORDER BY {_order(plan)} LIMIT ?", [*args, limit])


class LogPage(list[LoggedRequest]):
    """A page of the log (a list of its rows) and, when the walk stopped at its bound before the page was full,
    the id of the last record it read (`stopped_at`): the cursor the next page goes on from."""

    stopped_at: int | None = None


def logged_of(row: Any) -> LoggedRequest:
    return LoggedRequest(row[0], UsageRecord(*tuple(row)[2:]), row[1])


def page_of(rows: list[LoggedRequest], limit: int, scan_end: tuple[float, int] | None) -> LogPage:
    """The page of the rows a bounded walk found: short of `limit` only because the walk stopped at its bound
    (`stopped_at`: where the next page goes on from) or reached the end of the log (`stopped_at` None)."""
    page = LogPage(rows)
    if scan_end is not None and len(rows) < limit:
        page.stopped_at = scan_end[1]
    return page


def requests_page(conn: sqlite3.Connection, f: RequestFilter, before: int | None, limit: int,
                  scan: int = SCAN_ROWS) -> LogPage:
    """Up to `limit` records of the filter, newest first, after the record `before` (a page's `stopped_at`, or
    its last id) in that order, reading at most `scan` records of the walk; `UnknownCursor` when `before`
    names no record of the filter's account or key."""
    created_at = None
    lookup = cursor_query(f, before)
    if lookup is not None:
        found = conn.execute(*lookup).fetchone()
        if found is None:
            raise UnknownCursor(str(before))
        created_at = found[0]
    bound = scan_end_query(SQLITE, f, before, created_at, scan)
    scan_end = None
    if bound is not None:
        row = conn.execute(*bound).fetchone()
        scan_end = (row[0], row[1]) if row is not None else None
    rows = [logged_of(row) for row in conn.execute(*page_query(SQLITE, f, before, created_at, limit, scan_end))]
    return page_of(rows, limit, scan_end)
