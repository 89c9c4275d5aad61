"""Usage over time for charts (issue 15), from the hourly aggregates only: the queries, and SQLite's run of them.

`usage_hourly` (migration 0009) holds every usage record (rolled up in bulk: store/rollup.py), per account, hour, key,
model asked, model used, route and status, and outlives the raw records' retention: a year of
charts reads a year of aggregate rows of one account (its primary key starts with the account and
the hour), never the records; a series in day buckets and a range's sums read the whole days inside
from `usage_daily` (migration 0014: a day's row is the sum of its hours', with those not folded into it
yet: migration 0017), the hours at its ends from `usage_hourly` (`usage_queries.parts`): a month is a few thousand rows, not a hundred thousand. Sums are
exact integers (nano-dollars, tokens): a series over whole hours adds up to the records of those hours
to the nano-dollar.

The builders (`*_query`) and folds (`*_of`) serve both stores: the SQL is the same text in SQLite and
PostgreSQL (`?` placeholders; `dialect.numbered` for asyncpg); the functions of a connection at the
end run them on SQLite's database thread, `postgres/series.py` on an asyncpg connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tollgate.store.dialect import Query
from tollgate.store.usage_queries import HOUR as HOUR
from tollgate.store.usage_queries import Part, hour_ceil, hour_floor, parts

DAY = 86400

# A series' grouping: the API's name -> the aggregate's column. None: one series (no grouping).
GROUPS = {"key": "key_id", "model": "model", "upstreamModel": "upstream_model", "route": "route", "status": "status"}

_SUMS = ("SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(cost),"
         " SUM(CASE WHEN status >= 400 THEN requests ELSE 0 END), SUM(fallbacks), SUM(latency_ms)")


@dataclass(slots=True)
class Sums:
    """What a bucket (or a whole range) holds: counts, tokens, nano-dollars; `latency_ms` is a sum."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: int = 0
    errors: int = 0  # requests answered with a status of 400 or more (refusals included)
    fallbacks: int = 0
    latency_ms: float = 0.0

    def add(self, other: Sums) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.cost += other.cost
        self.errors += other.errors
        self.fallbacks += other.fallbacks
        self.latency_ms += other.latency_ms


def sums_of(row: Sequence[Any]) -> Sums:
    """A bucket's sums (NULL: 0); `int` is exact for SQLite's ints and PostgreSQL's NUMERIC sums (Decimals)."""
    *counts, latency = (v if v is not None else 0 for v in row)
    return Sums(*(int(v) for v in counts), latency_ms=float(latency))


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start: int  # the bucket's first second (UTC-aligned hour or day)
    group: str | int | None  # the group's value (a key id, a model, a route, a status); None: not set / no grouping
    sums: Sums


@dataclass(slots=True)
class UsageSeries:
    points: list[SeriesPoint] = field(default_factory=list)
    key_names: dict[str, str] = field(default_factory=dict)  # names of the keys in the points (group by key)


def _part_sql(part: Part, select: str, account_id: str, key_id: str | None, tail: str = "") -> Query:
    """`SELECT {select} FROM` the part's table, for the account (or one key) and the part's range; `{t}` in
    `select` is the table's time column."""
    table, column, first, end = part
    sql = f"SELECT {select.format(t=column)} FROM {table} WHERE account_id = ?"
    args: list[Any] = [account_id]
    if first is not None:
        sql += f" AND {column} >= ?"
        args.append(first)
    if end is not None:
        sql += f" AND {column} < ?"
        args.append(end)
    if key_id is not None:
        sql += " AND key_id = ?"
        args.append(key_id)
    return sql + tail, args


def _union(queries: list[Query]) -> Query:
    return " UNION ALL ".join(sql for sql, _ in queries), [a for _, args in queries for a in args]


def series_query(account_id: str, since: float, until: float, group_by: str | None, bucket: int,
                 key_id: str | None = None) -> Query:
    """Rows (bucket start, group, *sums) of the account's (or one key's) usage per `bucket` (HOUR or DAY) and
    group, for the hours that start in [hour of `since`, `until` rounded up to the hour), oldest bucket first.
    Day buckets read whole days from the daily aggregates and the hours not folded into them yet: a day may
    come from two parts, whose rows `series_of` adds up."""
    column = GROUPS[group_by] if group_by is not None else "NULL"
    queries = []
    for part in parts(hour_floor(since), hour_ceil(until), bucket == DAY):
        # A bucket of the table's own size is its time column: grouped in primary key order, no sort (SQLite).
        start = "{t}" if (part[1] == "hour") == (bucket == HOUR) else f"{{t}} - {{t}} % {int(bucket)}"
        queries.append(_part_sql(part, f"{start} AS start, {column} AS grp, {_SUMS}", account_id, key_id,
                                 " GROUP BY start, grp"))
    sql, args = _union(queries)
    return sql + " ORDER BY start, grp", args


def series_of(rows: Iterable[Sequence[Any]], group_by: str | None) -> UsageSeries:
    """The series of `series_query`'s rows (its key names still to add: `key_names_queries`)."""
    series = UsageSeries()
    points = series.points
    for start, group, *sums in rows:
        if group == "" and group_by in ("route", "upstreamModel"):
            group = None  # stored as '' in the aggregates (a primary key column)
        if points and points[-1].start == int(start) and points[-1].group == group:
            points[-1].sums.add(sums_of(sums))  # a day from its daily row and its unfolded hours (rows in order)
        else:
            points.append(SeriesPoint(int(start), group, sums_of(sums)))
    return series


def key_names_queries(series: UsageSeries, group_by: str | None) -> list[Query]:
    """Queries of (id, name) of the keys a series grouped by key names, 500 at a time; none for other groupings."""
    if group_by != "key":
        return []
    ids = sorted({p.group for p in series.points if isinstance(p.group, str)})
    return [(f"SELECT id, name FROM api_keys WHERE id IN ({', '.join('?' * len(ids[at:at + 500]))})", ids[at:at + 500])
            for at in range(0, len(ids), 500)]


def usage_series(conn: sqlite3.Connection, account_id: str, since: float, until: float, group_by: str | None,
                 bucket: int, key_id: str | None = None) -> UsageSeries:
    """`series_query`'s series, with the names of its keys when grouped by key; buckets with nothing left out."""
    series = series_of(conn.execute(*series_query(account_id, since, until, group_by, bucket, key_id)), group_by)
    for sql, args in key_names_queries(series, group_by):
        series.key_names.update(conn.execute(sql, args).fetchall())
    return series


@dataclass(frozen=True, slots=True)
class AccountSpend:
    account_id: str
    name: str
    created_at: int
    sums: Sums


ACCOUNT_CREATED = "SELECT created_at FROM accounts WHERE id = ?"  # the cursor's place (no row: unknown cursor)


def accounts_page_query(after: str | None, after_created_at: int | None, limit: int) -> Query:
    """Accounts (id, name, created_at) oldest first, after the account `after` (created at `after_created_at`)."""
    if after is None:
        return "SELECT id, name, created_at FROM accounts ORDER BY created_at, id LIMIT ?", [limit]
    return ("SELECT id, name, created_at FROM accounts WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
            [after_created_at, after, limit])


_SUMMED = "requests, input_tokens, output_tokens, cached_tokens, cost, status, fallbacks, latency_ms"


def account_sums_query(account_id: str, since: float, until: float) -> Query:
    """One row of sums: the account's usage in the hours of [since, until) (whole days from the daily aggregates)."""
    sql, args = _union([_part_sql(part, _SUMMED, account_id, None)
                        for part in parts(hour_floor(since), hour_ceil(until), True)])
    return f"SELECT {_SUMS} FROM ({sql}) AS u", args


def accounts_sums_query(account_ids: list[str], since: float, until: float) -> Query:
    """Rows (account id, *sums) of these accounts' usage in the hours of [since, until), in one statement (for a
    database a round trip away; an account with no usage has no row)."""
    marks = ", ".join("?" * len(account_ids))
    queries = []
    for table, column, first, end in parts(hour_floor(since), hour_ceil(until), True):
        sql = f"SELECT account_id, {_SUMMED} FROM {table} WHERE account_id IN ({marks})"
        args: list[Any] = [*account_ids]
        for op, value in ((">=", first), ("<", end)):
            if value is not None:
                sql += f" AND {column} {op} ?"
                args.append(value)
        queries.append((sql, args))
    sql, args = _union(queries)
    return f"SELECT account_id, {_SUMS} FROM ({sql}) AS u GROUP BY account_id", args


def spend_by_account(conn: sqlite3.Connection, since: float, until: float, after: str | None,
                     limit: int) -> list[AccountSpend] | None:
    """A page of accounts (oldest first, after the account id `after`) with their usage in the hours of
    [since, until); None when `after` is no account id."""
    created = None
    if after is not None:
        found = conn.execute(ACCOUNT_CREATED, (after,)).fetchone()
        if found is None:
            return None
        created = found[0]
    accounts = conn.execute(*accounts_page_query(after, created, limit)).fetchall()
    return [AccountSpend(account_id, name, created_at,
                         sums_of(conn.execute(*account_sums_query(account_id, since, until)).fetchone()))
            for account_id, name, created_at in accounts]
