"""Usage reads on the SQLite connection: sums grouped in SQL, and records for the cost lab.

Each function here runs on the store's database thread (`SQLiteStore._ledger_read`),
never on the event loop: an account's records are summed by SQLite (integer
nano-dollars, exact in its 64-bit integers) and only the buckets come back.
Every query names the account and a time range, so it walks the
`usage_account_time` or `usage_key_time` index over that range only, or the
hourly aggregates (`usage_hourly`, kept by a trigger on every insert).

Raw records before `usage_pruned_before` (meta; an hour boundary, moved by `prune_usage`)
may be gone: sums over that part come from the hourly aggregates, so a report over
pruned history stays exact to the nano-dollar, at the resolution of whole hours (a
range starting inside a pruned hour counts that whole hour; a budget window that is
not a whole number of hours gets each pruned hour in the window its start falls in).
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
HOUR = 3600


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


# The same sums over hourly aggregates.
_HOURLY_SUMS = ("SUM(cost), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens),"
                " SUM(cache_saved)")


def pruned_before(conn: sqlite3.Connection) -> float:
    """Raw records before this time may have been pruned (0: none ever were)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'usage_pruned_before'").fetchone()
    return float(row[0]) if row else 0.0


def _hour_floor(t: float) -> int:
    return int(t // HOUR) * HOUR


def _hour_ceil(t: float) -> int:
    return -int(-t // HOUR) * HOUR


def _hourly_where(account_id: str, key_id: str | None, first: float | None, end: float | None) -> tuple[str, list]:
    """Aggregates of the account (or one key) for the hours starting in [first, end)."""
    sql, args = "account_id = ?", [account_id]
    if key_id is not None:
        sql += " AND key_id = ?"
        args.append(key_id)
    if first is not None:
        sql += " AND hour >= ?"
        args.append(first)
    if end is not None:
        sql += " AND hour < ?"
        args.append(end)
    return sql, args


Range = tuple[float | None, float | None]  # [from, to); None: open


def _ranges(conn: sqlite3.Connection, since: float | None, until: float | None,
            whole_hours: bool) -> tuple[list[Range], Range | None]:
    """What a sum over [since, until) reads: ranges of raw records, and the hours (their starts in
    [first, end)) read from the hourly aggregates, or None.

    Raw records before the prune horizon may be gone: that part of the range comes from the
    aggregates, in whole hours. With `whole_hours` (every grouping the caller makes puts a whole hour
    in one group: days, and budget windows of whole hours), the whole hours inside the range come
    from the aggregates too, and only the part of an hour at either end from raw records: a month
    of a busy account is a few thousand aggregate rows instead of millions of records.
    """
    horizon = pruned_before(conn)
    if not whole_hours:
        if not horizon or (since is not None and since >= horizon):
            return [(since, until)], None
        first = _hour_floor(since) if since is not None else None
        end = horizon if until is None else min(horizon, _hour_ceil(until))
        return [(max(since or 0.0, horizon), until)], (first, end)
    first = None if since is None else _hour_ceil(since) if since >= horizon else _hour_floor(since)
    end = None if until is None else _hour_floor(until) if until >= horizon else _hour_ceil(until)
    if first is not None and end is not None and end <= first:
        return [(since, until)], None  # within one hour, after the horizon: raw records only
    raw: list[Range] = []
    if since is not None and first is not None and since < first:  # (first > since only after the horizon)
        raw.append((since, first))
    if until is not None and end is not None and end < until:
        raw.append((end, until))
    return raw, (first, end)


def _raw_buckets(conn: sqlite3.Connection, account_id: str, key_id: str | None, ranges: list[Range],
                 start: str, start_args: list) -> list:
    rows: list = []
    for lo, hi in ranges:
        where, where_args = _where(account_id, key_id, lo, hi)
        rows += conn.execute(
            f"SELECT t / {DAY} AS day, {start} AS start, {_SUMS}"
            f" FROM (SELECT {_SECOND} AS t, {_SUMMED} FROM usage_records WHERE {where})"
            " GROUP BY day, start",
            [*start_args, *where_args],
        ).fetchall()
    return rows


def usage_summary(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float | None,
                  until: float | None, window: int | None, per_key: bool) -> SpendSummary:
    """Spend grouped by UTC day and budget window, rolled up by `summarize`; with `per_key`, the
    account's keys and theirs too. One call on the database thread, where the ledger is also
    written: both reads see the same records. Whole hours from the aggregates where every group
    holds whole hours (`_ranges`), else raw records (and pruned history from the aggregates)."""
    raw, hours = _ranges(conn, since, until, window is None or window % HOUR == 0)
    start, start_args = _window_start_sql(window)
    rows = _raw_buckets(conn, account_id, key_id, raw, start, start_args)
    if hours is not None:
        hourly, hourly_args = _hourly_where(account_id, key_id, *hours)
        rows += conn.execute(
            f"SELECT t / {DAY} AS day, {start} AS start, {_HOURLY_SUMS}"
            f" FROM (SELECT hour AS t, * FROM usage_hourly WHERE {hourly}) GROUP BY day, start",
            [*start_args, *hourly_args],
        ).fetchall()
    summary = summarize(((day, start, Spend(*sums)) for day, start, *sums in rows), window)
    if per_key:
        summary.by_key = usage_by_key(conn, account_id, since, until)
    return summary


def usage_total(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float) -> Spend:
    """Spend from `since` to now: the whole hours from the hourly aggregates (the current hour's is as
    up to date as the records), the part of an hour before the first whole one from raw records.

    What `/v1/usage` asks on every call: a window that starts on the hour reads one aggregate row
    per hour, model and route, however many requests the window holds.
    """
    raw, hours = _ranges(conn, since, None, True)
    total = Spend()
    for lo, hi in raw:
        where, args = _where(account_id, key_id, lo, hi)
        total.add_spend(Spend(*(v or 0 for v in conn.execute(f"SELECT {_SUMS} FROM usage_records WHERE {where}",
                                                             args).fetchone())))
    if hours is not None:
        hourly, args = _hourly_where(account_id, key_id, *hours)
        total.add_spend(Spend(*(v or 0 for v in conn.execute(f"SELECT {_HOURLY_SUMS} FROM usage_hourly WHERE {hourly}",
                                                             args).fetchone())))
    return total


def usage_by_key(conn: sqlite3.Connection, account_id: str, since: float | None,
                 until: float | None) -> list[tuple[str, str, Spend]]:
    """(key id, name, spend) of every key of the account, oldest key first; a key with no requests spent 0."""
    raw, hours = _ranges(conn, since, until, True)
    sums: dict[str, Spend] = {}
    for lo, hi in raw:
        where, args = _where(account_id, None, lo, hi)
        for key_id, *rest in conn.execute(f"SELECT key_id, {_SUMS} FROM usage_records WHERE {where} GROUP BY key_id",
                                          args):
            sums.setdefault(key_id, Spend()).add_spend(Spend(*rest))
    if hours is not None:
        hourly, hourly_args = _hourly_where(account_id, None, *hours)
        for key_id, *rest in conn.execute(f"SELECT key_id, {_HOURLY_SUMS} FROM usage_hourly WHERE {hourly}"
                                          " GROUP BY key_id", hourly_args):
            sums.setdefault(key_id, Spend()).add_spend(Spend(*rest))
    keys = conn.execute("SELECT id, name FROM api_keys WHERE account_id = ? ORDER BY created_at, id", (account_id,))
    return [(key_id, name, sums.get(key_id) or Spend()) for key_id, name in keys]


def usage_records(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float | None,
                  until: float | None) -> list[UsageRecord]:
    """The records themselves (the cost lab reads them all), built into objects here, off the event loop."""
    where, args = _where(account_id, key_id, since, until)
    rows = conn.execute(f"SELECT {', '.join(USAGE_FIELDS)} FROM usage_records WHERE {where} ORDER BY id", args)
    return [UsageRecord(*r) for r in rows]


ACCOUNTS_PER_PRUNE = 1000  # accounts one prune call looks at, at most (each one index seek)


def prune_usage(conn: sqlite3.Connection, before: int, limit: int, after: str) -> tuple[int, str | None]:
    """Delete up to `limit` raw records admitted before `before` (an hour boundary), account by account from
    the first account id above `after`; (how many, the `after` to go on from, None when every account is done).

    The horizon moves first, in the same transaction: from then on reads take the time before it
    from the aggregates, so no instant sees a record counted twice or not at all. Each account's
    old records are found on `usage_account_time` (an index seek, then its oldest rows): exact
    whatever order the records were written in, and never a scan of the table.
    """
    conn.execute("INSERT INTO meta (key, value) VALUES ('usage_pruned_before', ?) ON CONFLICT(key)"
                 " DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))", (str(before),))
    deleted = 0
    for _ in range(ACCOUNTS_PER_PRUNE):
        row = conn.execute("SELECT account_id FROM usage_records WHERE account_id > ? ORDER BY account_id LIMIT 1",
                           (after,)).fetchone()
        if row is None:
            return deleted, None
        deleted += conn.execute(
            "DELETE FROM usage_records WHERE id IN (SELECT id FROM usage_records"
            " WHERE account_id = ? AND created_at < ? ORDER BY created_at LIMIT ?)",
            (row[0], before, limit - deleted)).rowcount
        if deleted >= limit:
            return deleted, after  # this account may have more: the next call starts at it again
        after = row[0]
    return deleted, after


def records_page(conn: sqlite3.Connection, after_id: int, before: float | None, limit: int) -> list[tuple[int, UsageRecord]]:
    """Raw records after `after_id` in id order, admitted before `before` (all when None): an export's page."""
    sql = f"SELECT id, {', '.join(USAGE_FIELDS)} FROM usage_records WHERE id > ?"
    args: list[Any] = [after_id]
    if before is not None:
        sql += " AND created_at < ?"
        args.append(before)
    rows = conn.execute(sql + " ORDER BY id LIMIT ?", [*args, limit])
    return [(row[0], UsageRecord(*row[1:])) for row in rows]
