"""SQLite's hourly and daily usage aggregates, kept in bulk (migration 0015).

A usage record queues its id in `usage_unrolled` as it is inserted (a trigger: whatever path wrote
it, in its transaction). `roll_up` folds every queued record into `usage_hourly` and `usage_daily`
with one grouped upsert per table, then empties the queue, all in the caller's transaction: a
record is in the aggregates exactly once, the moment it leaves the queue.

Why not per record: with a hundred thousand keys in use each record's aggregate rows sit on pages
of their own, and a per-record upsert dirtied two more pages per record in every commit (see the
migration). Grouped, the records of a few seconds write each row they touch once.

When: the store rolls up every `ROLL_UP_SECONDS` with its ledger writes (or sooner, past
`ROLL_UP_ROWS` rows changed, so that one roll-up stays a few milliseconds), before every read of the
aggregates, in the transaction that prunes records (a pruned record must be counted first), and
when it closes (a database at rest holds no queue, for readers outside the store).
"""

from __future__ import annotations

import sqlite3

ROLL_UP_SECONDS = 5.0
ROLL_UP_ROWS = 40_000  # rows any statement changed (a record: itself, its queue entry, its counters)

_SUMS = ("COUNT(*), SUM(r.input_tokens), SUM(r.output_tokens), SUM(COALESCE(r.cached_prefix_tokens, 0)),"
         " SUM(COALESCE(r.cache_write_tokens, 0)), SUM(r.cost), SUM(COALESCE(r.cache_saved, 0)), SUM(r.latency_ms),"
         " SUM(r.fallbacks), SUM(r.estimated)")
_ADDED = ", ".join(f"{c} = {c} + excluded.{c}" for c in (
    "requests", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "cost", "cache_saved",
    "latency_ms", "fallbacks", "estimated"))


def _upsert(table: str, size: int) -> str:
    """The queued records' sums per (account, time bucket of `size` seconds, key, model, model used, route,
    status), added to `table`'s rows. The queue drives the join (CROSS JOIN keeps that order): a rowid
    lookup per queued record, never a scan of the records."""
    bucket = f"CAST(r.created_at AS INTEGER) - CAST(r.created_at AS INTEGER) % {size}"
    return (f"INSERT INTO {table} SELECT r.account_id, {bucket}, r.key_id, r.model, COALESCE(r.upstream_model, ''),"
            f" COALESCE(r.route, ''), r.status, {_SUMS}"
            " FROM usage_unrolled AS q CROSS JOIN usage_records AS r ON r.id = q.id"
            " WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7"  # WHERE: an upsert's SELECT needs one (SQLite's grammar)
            f" ON CONFLICT DO UPDATE SET {_ADDED}")


_ROLL_UP = (_upsert("usage_hourly", 3600), _upsert("usage_daily", 86400), "DELETE FROM usage_unrolled")


def queued(conn: sqlite3.Connection) -> bool:
    """Whether any record waits to be rolled up."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM usage_unrolled)").fetchone()[0] == 1


def roll_up(conn: sqlite3.Connection) -> None:
    """Fold every queued record into the hourly and daily aggregates (inside the caller's transaction)."""
    for sql in _ROLL_UP:
        conn.execute(sql)
