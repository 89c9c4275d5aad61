"""Usage over time for charts (issue 15), from the hourly aggregates only, on the store's database thread.

`usage_hourly` (migration 0009) is kept by a trigger on every usage record, per account, hour, key,
model asked, model used, route and status, and outlives the raw records' retention: a year of
charts reads a year of aggregate rows of one account (its primary key starts with the account and
the hour), never the records. Sums are exact integers (nano-dollars, tokens): a series over whole
hours adds up to the records of those hours to the nano-dollar.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

HOUR = 3600
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


def _sums(row: tuple) -> Sums:
    return Sums(*(v or 0 for v in row))


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start: int  # the bucket's first second (UTC-aligned hour or day)
    group: str | int | None  # the group's value (a key id, a model, a route, a status); None: not set / no grouping
    sums: Sums


@dataclass(slots=True)
class UsageSeries:
    points: list[SeriesPoint] = field(default_factory=list)
    key_names: dict[str, str] = field(default_factory=dict)  # names of the keys in the points (group by key)


def hour_floor(t: float) -> int:
    return int(t // HOUR) * HOUR


def hour_ceil(t: float) -> int:
    return -int(-t // HOUR) * HOUR


def usage_series(conn: sqlite3.Connection, account_id: str, since: float, until: float, group_by: str | None,
                 bucket: int, key_id: str | None = None) -> UsageSeries:
    """The account's (or one key's) usage per `bucket` (HOUR or DAY) and group, for the hours that start in
    [hour of `since`, `until` rounded up to the hour), oldest bucket first; buckets with nothing are left out."""
    column = GROUPS[group_by] if group_by is not None else "NULL"
    sql = (f"SELECT hour - hour % {int(bucket)} AS start, {column} AS grp, {_SUMS} FROM usage_hourly"
           " WHERE account_id = ? AND hour >= ? AND hour < ?")
    args: list[Any] = [account_id, hour_floor(since), hour_ceil(until)]
    if key_id is not None:
        sql += " AND key_id = ?"
        args.append(key_id)
    rows = conn.execute(sql + " GROUP BY start, grp ORDER BY start, grp", args).fetchall()
    series = UsageSeries()
    for start, group, *sums in rows:
        if group == "" and group_by in ("route", "upstreamModel"):
            group = None  # stored as '' in the aggregates (a primary key column)
        series.points.append(SeriesPoint(start, group, _sums(sums)))
    if group_by == "key":
        ids = sorted({p.group for p in series.points if isinstance(p.group, str)})
        for at in range(0, len(ids), 500):
            chunk = ids[at:at + 500]
            series.key_names.update(conn.execute(
                f"SELECT id, name FROM api_keys WHERE id IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
    return series


@dataclass(frozen=True, slots=True)
class AccountSpend:
    account_id: str
    name: str
    created_at: int
    sums: Sums


def spend_by_account(conn: sqlite3.Connection, since: float, until: float, after: str | None,
                     limit: int) -> list[AccountSpend] | None:
    """A page of accounts (oldest first, after the account id `after`) with their usage in the hours of
    [since, until), one aggregate range read per account; None when `after` is no account id."""
    args: list[Any] = []
    where = ""
    if after is not None:
        found = conn.execute("SELECT created_at FROM accounts WHERE id = ?", (after,)).fetchone()
        if found is None:
            return None
        where = "WHERE (created_at, id) > (?, ?)"
        args = [found[0], after]
    accounts = conn.execute(f"SELECT id, name, created_at FROM accounts {where} ORDER BY created_at, id LIMIT ?",
                            [*args, limit]).fetchall()
    first, end = hour_floor(since), hour_ceil(until)
    out = []
    for account_id, name, created_at in accounts:
        row = conn.execute(f"SELECT {_SUMS} FROM usage_hourly WHERE account_id = ? AND hour >= ? AND hour < ?",
                           (account_id, first, end)).fetchone()
        out.append(AccountSpend(account_id, name, created_at, _sums(row)))
    return out
