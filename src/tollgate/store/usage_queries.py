"""The SQL of usage sums, for either store: builders that return (sql, args), and folds of the rows they give.

A report is planned here and run by a store (`usage_sums.py` on SQLite's database thread,
`postgres/usage.py` on an asyncpg connection): first the prune horizon (`PRUNED_BEFORE`, read in the
same snapshot as the rows), then the queries a builder returns for it, then a fold of their rows
into a `Spend` or a `SpendSummary`. The databases sum exact integers (nano-dollars, tokens);
PostgreSQL's SUM of a BIGINT is a NUMERIC (a `Decimal` in Python), made an `int` exactly by `spend_of`.

Raw records before the horizon (meta `usage_pruned_before`, an hour boundary) may be gone: sums
over that part come from the hourly aggregates (`usage_hourly`), so a report over pruned history stays
exact to the nano-dollar, at the resolution of whole hours (a range starting inside a pruned hour
counts that whole hour; a budget window that is not a whole number of hours gets each pruned hour
in the window its start falls in).

Whole hours are read from the aggregates even after the horizon where every group of the report holds
whole hours, and whole UTC days from the daily ones (`usage_daily`, migration 0014: each day's row is
the sum of its hours', those not folded into it yet read beside it: `parts`) where every group holds
whole days (days, weeks, months, keys, credits and windows of whole days): a month of a busy account is about 7,000 daily rows and two days of hours at
its ends, not 120,000 hourly rows (`parts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tollgate.domain.spend import Spend, SpendSummary, summarize
from tollgate.domain.windows import DAY
from tollgate.ledger.sql import USAGE_FIELDS
from tollgate.store.dialect import Dialect, Query

HOUR = 3600
# A `Spend`'s fields, in order, summed (the cache columns are null where nothing was reported).
SUMS = ("SUM(cost), COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(COALESCE(cached_prefix_tokens, 0)),"
        " SUM(COALESCE(cache_saved, 0))")
_SUMMED = "cost, input_tokens, output_tokens, cached_prefix_tokens, cache_saved"
_AGGREGATED = "cost, requests, input_tokens, output_tokens, cached_tokens, cache_saved"  # what HOURLY_SUMS reads
# The same sums over hourly aggregates.
HOURLY_SUMS = ("SUM(cost), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens),"
               " SUM(cache_saved)")
PRUNED_BEFORE = "SELECT value FROM meta WHERE key = 'usage_pruned_before'"

Range = tuple[float | None, float | None]  # [from, to); None: open


def horizon_of(value: Any) -> float:
    """The horizon from meta's value (None: no record was ever pruned -> 0)."""
    return float(value) if value is not None else 0.0


def spend_of(sums: Sequence[Any]) -> Spend:
    """A `Spend` from its six sums (NULL when no row: 0); `int` is exact for SQLite's ints and PostgreSQL's Decimals."""
    return Spend(*(int(v) if v is not None else 0 for v in sums))


def hour_floor(t: float) -> int:
    return int(t // HOUR) * HOUR


def hour_ceil(t: float) -> int:
    return -int(-t // HOUR) * HOUR


def _range_where(account: str, account_id: str, key_id: str | None, column: str, lo: float | None,
                 hi: float | None) -> Query:
    sql, args = f"{account} = ?", [account_id]
    if key_id is not None:
        sql += " AND key_id = ?"
        args.append(key_id)
    if lo is not None:
        sql += f" AND {column} >= ?"
        args.append(lo)
    if hi is not None:
        sql += f" AND {column} < ?"
        args.append(hi)
    return sql, args


def where(d: Dialect, account_id: str, key_id: str | None, since: float | None, until: float | None) -> Query:
    """Raw records of the account (or one key) admitted in [since, until)."""
    # SQLite: with a key, `+account_id` keeps the planner on usage_key_time (one key's range), not the account's.
    account = d.hint("account_id") if key_id is not None else "account_id"
    return _range_where(account, account_id, key_id, "created_at", since, until)


def hourly_where(account_id: str, key_id: str | None, first: float | None, end: float | None,
                 column: str = "hour") -> Query:
    """Aggregates of the account (or one key) for the hours (or days: `column` "day") starting in [first, end)."""
    return _range_where("account_id", account_id, key_id, column, first, end)


def day_floor(t: int) -> int:
    return t - t % DAY


def day_ceil(t: int) -> int:
    return -(-t // DAY) * DAY


# (table, its time column, first, end): aggregates of the times in [first, end) (None: open).
Part = tuple[str, str, int | None, int | None]

# The hours not yet folded into `usage_daily` (SQLite, migration 0017: those from meta `daily_through` on; see
# store/rollup.py), read beside the daily rows of the same days. PostgreSQL keeps its days with its hours, has
# no mark, and reads nothing here.
UNFOLDED_HOURS = ("(SELECT * FROM usage_hourly WHERE hour >="
                  " (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'daily_through')) AS unfolded")


def parts(first: int | None, end: int | None, whole_days: bool) -> list[Part]:
    """Where the aggregates of the hours in [first, end) (hour boundaries; None: open) are read: with
    `whole_days` (the caller's groups each hold whole UTC days), the whole days inside from `usage_daily`
    (with the hours of those days not folded into them yet: `UNFOLDED_HOURS`) and the hours at either end
    from `usage_hourly`; otherwise every hour from `usage_hourly`. The parts never overlap and cover the range
    exactly: a day's row is the sum of its hours' rows before the fold's mark, the unfolded part the rest.
    A day may so come from two parts."""
    if not whole_days:
        return [("usage_hourly", "hour", first, end)]
    lo = None if first is None else day_ceil(first)
    hi = None if end is None else day_floor(end)
    if lo is not None and hi is not None and hi <= lo:
        return [("usage_hourly", "hour", first, end)]  # no whole day inside
    out: list[Part] = []
    if first is not None and lo is not None and first < lo:
        out.append(("usage_hourly", "hour", first, lo))
    out.append(("usage_daily", "day", lo, hi))
    out.append((UNFOLDED_HOURS, "hour", lo, hi))
    if end is not None and hi is not None and hi < end:
        out.append(("usage_hourly", "hour", hi, end))
    return out


def window_start_sql(window: int | None) -> Query:
    """`tollgate.domain.windows.window_start` of the second `t`, in SQL (0 for credits)."""
    if window is None:
        return "0", []
    if window >= DAY:
        return "t - t % ?", [window]
    return f"t - t % {DAY} + (t % {DAY}) / ? * ?", [window, window]


def ranges(horizon: float, since: float | None, until: float | None, whole_hours: bool) -> tuple[list[Range], Range | None]:
    """What a sum over [since, until) reads: ranges of raw records, and the hours (their starts in
    [first, end)) read from the hourly aggregates, or None.

    Raw records before the prune horizon may be gone: that part of the range comes from the
    aggregates, in whole hours. With `whole_hours` (every grouping the caller makes puts a whole hour
    in one group: days, and budget windows of whole hours), the whole hours inside the range come
    from the aggregates too, and only the part of an hour at either end from raw records: a month
    of a busy account is a few thousand aggregate rows instead of millions of records.
    """
    if not whole_hours:
        if not horizon or (since is not None and since >= horizon):
            return [(since, until)], None
        first = hour_floor(since) if since is not None else None
        end = hour_ceil(horizon) if until is None else min(hour_ceil(horizon), hour_ceil(until))  # (an int: PostgreSQL's `hour` is BIGINT)
        return [(max(since or 0.0, horizon), until)], (first, end)
    first = None if since is None else hour_ceil(since) if since >= horizon else hour_floor(since)
    end = None if until is None else hour_floor(until) if until >= horizon else hour_ceil(until)
    if first is not None and end is not None and end <= first:
        return [(since, until)], None  # within one hour, after the horizon: raw records only
    raw: list[Range] = []
    if since is not None and first is not None and since < first:  # (first > since only after the horizon)
        raw.append((since, first))
    if until is not None and end is not None and end < until:
        raw.append((end, until))
    return raw, (first, end)


def split_queries(d: Dialect, horizon: float, account_id: str, key_id: str | None, since: float | None,
                  until: float | None, whole_hours: bool, raw_sql: str, hourly_sql: str,
                  head_args: Sequence[Any] = (), whole_days: bool = False) -> list[Query]:
    """One query per part of the range `ranges` splits [since, until) into: `raw_sql` over raw records,
    `hourly_sql` over the aggregates (`{table}` and its time column `{t}`; whole days from the daily
    ones with `whole_days`, see `parts`), each with `{where}` for its condition, whose arguments follow
    `head_args` (those of placeholders before the condition)."""
    raw, hours = ranges(horizon, since, until, whole_hours)
    queries = []
    for lo, hi in raw:
        sql, args = where(d, account_id, key_id, lo, hi)
        queries.append((raw_sql.format(where=sql), [*head_args, *args]))
    if hours is not None:
        first, end = (None if v is None else int(v) for v in hours)
        for table, column, lo_t, hi_t in parts(first, end, whole_days):
            sql, args = hourly_where(account_id, key_id, lo_t, hi_t, column)
            queries.append((hourly_sql.format(where=sql, table=table, t=column), [*head_args, *args]))
    return queries


def summary_queries(d: Dialect, horizon: float, account_id: str, key_id: str | None, since: float | None,
                    until: float | None, window: int | None) -> list[Query]:
    """Queries of rows (UTC day number, window start, *six sums) whose fold (`summary_of`) is the report.
    Whole hours from the aggregates where every group holds whole hours (`ranges`), else raw records."""
    start, start_args = window_start_sql(window)
    raw = (f"SELECT t / {DAY} AS day, {start} AS start, {SUMS} FROM (SELECT {d.second('created_at')} AS t,"
           f" {_SUMMED} FROM usage_records WHERE {{where}}) AS r GROUP BY day, start")
    hourly = (f"SELECT t / {DAY} AS day, {start} AS start, {HOURLY_SUMS} FROM (SELECT {{t}} AS t, {_AGGREGATED}"
              " FROM {table} WHERE {where}) AS h GROUP BY day, start")
    return split_queries(d, horizon, account_id, key_id, since, until, window is None or window % HOUR == 0,
                         raw, hourly, start_args, whole_days=window is None or window % DAY == 0)


def summary_of(rows: Iterable[Sequence[Any]], window: int | None) -> SpendSummary:
    return summarize(((int(row[0]), int(row[1]), spend_of(row[2:])) for row in rows), window)


def total_queries(d: Dialect, horizon: float, account_id: str, key_id: str | None, since: float) -> list[Query]:
    """Queries of one row of six sums each, whose sum is the spend from `since` to now: the whole hours
    from the hourly aggregates (the current hour's is as up to date as the records), the part of an
    hour before the first whole one from raw records. `/v1/usage` asks this on every call."""
    return split_queries(d, horizon, account_id, key_id, since, None, True,
                         f"SELECT {SUMS} FROM usage_records WHERE {{where}}",
                         f"SELECT {HOURLY_SUMS} FROM {{table}} WHERE {{where}}", whole_days=True)


def total_of(rows: Iterable[Sequence[Any]]) -> Spend:
    total = Spend()
    for row in rows:
        total.add_spend(spend_of(row))
    return total


def by_key_queries(d: Dialect, horizon: float, account_id: str, since: float | None,
                   until: float | None) -> list[Query]:
    """Queries of rows (key id, *six sums) of the account's keys in the range."""
    return split_queries(d, horizon, account_id, None, since, until, True,
                         f"SELECT key_id, {SUMS} FROM usage_records WHERE {{where}} GROUP BY key_id",
                         f"SELECT key_id, {HOURLY_SUMS} FROM {{table}} WHERE {{where}} GROUP BY key_id", whole_days=True)


def keys_query(account_id: str) -> Query:
    """The account's keys (id, name), oldest first."""
    return "SELECT id, name FROM api_keys WHERE account_id = ? ORDER BY created_at, id", [account_id]


def by_key_of(rows: Iterable[Sequence[Any]], keys: Iterable[Sequence[Any]]) -> list[tuple[str, str, Spend]]:
    """(key id, name, spend) of every key (as `keys_query` lists them); a key with no requests spent 0."""
    sums: dict[str, Spend] = {}
    for row in rows:
        sums.setdefault(row[0], Spend()).add_spend(spend_of(row[1:]))
    return [(key_id, name, sums.get(key_id) or Spend()) for key_id, name in keys]


def records_query(d: Dialect, account_id: str, key_id: str | None, since: float | None,
                  until: float | None) -> Query:
    sql, args = where(d, account_id, key_id, since, until)
    return f"SELECT {', '.join(USAGE_FIELDS)} FROM usage_records WHERE {sql} ORDER BY id", args


def records_page_query(after_id: int, before: float | None, limit: int) -> Query:
    """Raw records after `after_id` in id order, admitted before `before` (all when None): an export's page,
    each row its id then the record's fields."""
    sql = f"SELECT id, {', '.join(USAGE_FIELDS)} FROM usage_records WHERE id > ?"
    args: list[Any] = [after_id]
    if before is not None:
        sql += " AND created_at < ?"
        args.append(before)
    return sql + " ORDER BY id LIMIT ?", [*args, limit]


def routed_samples_query(count: int, since: float) -> Query:
    return ("SELECT request_text, route, model FROM usage_records WHERE request_text IS NOT NULL AND route IS NOT NULL"
            " AND created_at >= ? ORDER BY random() LIMIT ?", [since, count])
