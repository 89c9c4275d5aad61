"""Usage reads on the SQLite connection: sums grouped in SQL, and records for the cost lab.

Each function here runs on the store's database thread (`SQLiteStore._ledger_read`),
never on the event loop: an account's records are summed by SQLite (integer
nano-dollars, exact in its 64-bit integers) and only the buckets come back.
Every query names the account and a time range, so it walks the
`usage_account_time` or `usage_key_time` index over that range only.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tollgate.domain.spend import Spend, SpendSummary, summarize
from tollgate.domain.usage import UsageRecord
from tollgate.domain.windows import DAY
from tollgate.ledger.sql import USAGE_FIELDS

# created_at floored to its whole second (created_at is never negative: it is an admission time).
_SECOND = "CAST(created_at AS INTEGER)"
# A `Spend`'s fields, in order, summed (the cache columns are null where nothing was reported).
_SUMS = ("SUM(cost), COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(COALESCE(cached_prefix_tokens, 0)),"
         " SUM(COALESCE(cache_saved, 0))")
_SUMMED = "cost, input_tokens, output_tokens, cached_prefix_tokens, cache_saved"


def _where(account_id: str, key_id: str | None, since: float | None, until: float | None) -> tuple[str, list[Any]]:
    if key_id is not None:
        # `+account_id` keeps the planner on usage_key_time (one key's range), not the account's.
        sql, args = "+account_id = ? AND key_id = ?", [account_id, key_id]
    else:
        sql, args = "account_id = ?", [account_id]
    if since is not None:
        sql += " AND created_at >= ?"
        args.append(since)
    if until is not None:
        sql += " AND created_at < ?"
        args.append(until)
    return sql, args


def _window_start_sql(window: int | None) -> tuple[str, list[Any]]:
    """`tollgate.domain.windows.window_start` of the second `t`, in SQL (0 for credits)."""
    if window is None:
        return "0", []
    if window >= DAY:
        return "t - t % ?", [window]
    return f"t - t % {DAY} + (t % {DAY}) / ? * ?", [window, window]


def usage_summary(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float | None,
                  until: float | None, window: int | None, per_key: bool) -> SpendSummary:
    """Spend grouped by UTC day and budget window in one pass of the range, rolled up by `summarize`;
    with `per_key`, the account's keys and theirs too. One call on the database thread, where the
    ledger is also written: both reads see the same records."""
    where, where_args = _where(account_id, key_id, since, until)
    start, start_args = _window_start_sql(window)
    rows = conn.execute(
        f"SELECT t / {DAY} AS day, {start} AS start, {_SUMS}"
        f" FROM (SELECT {_SECOND} AS t, {_SUMMED} FROM usage_records WHERE {where})"
        " GROUP BY day, start",
        [*start_args, *where_args],
    ).fetchall()
    summary = summarize(((day, start, Spend(*sums)) for day, start, *sums in rows), window)
    if per_key:
        summary.by_key = usage_by_key(conn, account_id, since, until)
    return summary


def usage_by_key(conn: sqlite3.Connection, account_id: str, since: float | None,
                 until: float | None) -> list[tuple[str, str, Spend]]:
    """(key id, name, spend) of every key of the account, oldest key first; a key with no requests spent 0."""
    where, args = _where(account_id, None, since, until)
    sums = {key_id: Spend(*rest) for key_id, *rest in conn.execute(
        f"SELECT key_id, {_SUMS} FROM usage_records"
        f" WHERE {where} GROUP BY key_id", args)}
    keys = conn.execute("SELECT id, name FROM api_keys WHERE account_id = ? ORDER BY created_at, id", (account_id,))
    return [(key_id, name, sums.get(key_id) or Spend()) for key_id, name in keys]


def usage_records(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float | None,
                  until: float | None) -> list[UsageRecord]:
    """The records themselves (the cost lab reads them all), built into objects here, off the event loop."""
    where, args = _where(account_id, key_id, since, until)
    rows = conn.execute(f"SELECT {', '.join(USAGE_FIELDS)} FROM usage_records WHERE {where} ORDER BY id", args)
    return [UsageRecord(*r) for r in rows]
