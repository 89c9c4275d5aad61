"""SQLite's ledger writes in bulk: usage rows and spend land in unindexed tables, rolled up every half minute.

(migration 0016.) A journaled batch appends its usage rows to `usage_inbox` and its spend increments to
`spend_unfolded`: appends touch the last pages only. `roll_up` then, in the caller's transaction:
adds the inbox's records to the hourly and daily aggregates (one grouped upsert per table), moves them
into `usage_records` with the ids the inbox gave them as they arrived (migration 0018), empties the
inbox, and adds the queued increments to `spend_counters` in key order. A record is in the inbox, or in `usage_records` and both aggregates:
never half, never twice.

Why: with a hundred thousand keys in use, every structure ordered by key (the records' key-time and
account-time indexes, the aggregates, the spend counters) had a page of its own per record, dirtied in
every commit (written to the WAL, copied back by the checkpoint). In bulk, the records of a few seconds
write each page they touch once.

The daily aggregates are folded from closed hours (migration 0017), not from each roll-up's records:
`usage_daily` holds the hours before `daily_through` (meta, an hour boundary), `usage_hourly` every hour.
A roll-up that finds the clock past `daily_through`'s hour folds the hours in between from `usage_hourly`
into `usage_daily` (one grouped upsert, once an hour) and moves the mark; a record of an hour already
folded (a long stream settles late) goes into both at once. So a day's row is the sum of its hours before
the mark, and a read of whole days adds the hours from the mark on (`UNFOLDED_HOURS`,
`usage_queries.parts`). Why: per roll-up, the daily upsert touched a row per key in use again, each a
random page with a hundred thousand keys; folded hourly it touches each once an hour.

When: the store rolls up every `ROLL_UP_SECONDS` with its ledger writes (or sooner, past `ROLL_UP_ROWS`
rows changed, so that one roll-up stays short), when its database thread has been idle for a second, in
the transaction that prunes records, and when it closes (a database at rest holds nothing in the inbox,
for readers outside the store). Before every read of usage (a report, a chart, the request log: they see
every settled request) it rolls up what the read needs: a read of one account moves that account's
records only (`roll_up_account`), any other read everything. Before it reads a spend counter
(`read_spend`) it folds the spend alone (`fold_spend`).
"""

from __future__ import annotations

import sqlite3

from tollgate.ledger.sql import USAGE_FIELDS

# With a hundred thousand keys in use a roll-up writes each page of the key-ordered structures it touches
# (the records' key-time index, the hour's aggregates, the key counters: ~13,000 pages with 600,000
# records stored) whatever its size: the longer the cadence, the fewer pages a record costs
# (bench/keys_apply.py: with 100,000 keys, 26.7 us a record past the writes themselves at 45,000 records
# a roll-up, 17.8 at 90,000; with 100 keys, 10 either way). Reads do not wait for it (`roll_up_account`,
# ~45 ms over 90,000 waiting records), nor do the data plane's key reads (their own thread,
# store/reader.py); what bounds it is one roll-up's time on the database thread, which holds up the
# management writes and the ledger's next hand-off (~1.2 s at 100,000 keys, within the backlog's 5 s).
ROLL_UP_SECONDS = 30.0
# Rows any statement changed: a record is itself, its spend increments (two), and often its reservation's
# row and its removal: 400,000 is about 100,000 records, 30 s at 3,000 requests a second.
ROLL_UP_ROWS = 400_000

_SUMS = ("COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(COALESCE(cached_prefix_tokens, 0)),"
         " SUM(COALESCE(cache_write_tokens, 0)), SUM(cost), SUM(COALESCE(cache_saved, 0)), SUM(latency_ms),"
         " SUM(fallbacks), SUM(estimated)")
_AGGREGATED = ("requests", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "cost",
               "cache_saved", "latency_ms", "fallbacks", "estimated")  # the sums an aggregate row holds
_ADDED = ", ".join(f"{c} = {c} + excluded.{c}" for c in _AGGREGATED)
_COLUMNS = ", ".join(USAGE_FIELDS)


_DAILY_THROUGH = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'daily_through'"  # (migration 0017)


def _upsert(table: str, size: int, where: str = "true") -> str:
    """The sums of the inbox's records `where` holds, per (account, time bucket of `size` seconds, key, model,
    model used, route, status), added to `table`'s rows."""
    bucket = f"CAST(created_at AS INTEGER) - CAST(created_at AS INTEGER) % {size}"
    return (f"INSERT INTO {table} SELECT account_id, {bucket}, key_id, model, COALESCE(upstream_model, ''),"
            f" COALESCE(route, ''), status, {_SUMS} FROM usage_inbox"
            f" WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6, 7"  # WHERE: an upsert's SELECT needs one (SQLite's grammar)
            f" ON CONFLICT DO UPDATE SET {_ADDED}")


def _moves(where: str) -> tuple[str, ...]:
    """The statements that move the inbox's records `where` holds into the aggregates and `usage_records`."""
    return (_upsert("usage_hourly", 3600, where),
            _upsert("usage_daily", 86400, f"{where} AND created_at < ({_DAILY_THROUGH})"),  # hours already folded
            f"INSERT INTO usage_records (id, {_COLUMNS}) SELECT id, {_COLUMNS} FROM usage_inbox WHERE {where}"
            " ORDER BY id",  # the number each record got as it arrived (migration 0018)
            f"DELETE FROM usage_inbox WHERE {where}")


_ROLL_UP = _moves("true")
_ROLL_UP_ACCOUNT = _moves("account_id = ?")  # one placeholder each: the account

# The hours in [?, ?) into their days (usage_hourly_hour finds them: no scan of the table's history).
_FOLD_HOURS = ("INSERT INTO usage_daily SELECT account_id, hour - hour % 86400, key_id, model, upstream_model,"
               f" route, status, {', '.join(f'SUM({c})' for c in _AGGREGATED)} FROM usage_hourly"
               f" WHERE hour >= ? AND hour < ? GROUP BY 1, 2, 3, 4, 5, 6, 7 ON CONFLICT DO UPDATE SET {_ADDED}")

# Row by row in key order, not summed first: SUM() fails on a total past 64 bits, and a fold that fails
# would fail again every time; added one by one, each counter ends as a settlement-by-settlement upsert would.
_FOLD_SPEND = ("INSERT INTO spend_counters (pool, window_start, spent)"
               " SELECT pool, window_start, spent FROM spend_unfolded WHERE true ORDER BY pool, window_start"
               " ON CONFLICT(pool, window_start) DO UPDATE SET spent = spent + excluded.spent",
               "DELETE FROM spend_unfolded")


def queued(conn: sqlite3.Connection) -> bool:
    """Whether any record waits in the inbox, or any spend to be folded."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM usage_inbox) OR EXISTS (SELECT 1 FROM spend_unfolded)"
                        ).fetchone()[0] == 1


def spend_queued(conn: sqlite3.Connection) -> bool:
    """Whether any settlement's spend waits to be folded into the counters."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM spend_unfolded)").fetchone()[0] == 1


def fold_spend(conn: sqlite3.Connection) -> None:
    """Add every queued spend increment to its counter (inside the caller's transaction)."""
    for sql in _FOLD_SPEND:
        conn.execute(sql)


def fold_hours(conn: sqlite3.Connection, now: float) -> None:
    """Fold the closed hours not yet in `usage_daily` (those before the hour of `now`) into it, and move
    `daily_through` to the hour of `now` (inside the caller's transaction). A clock that went back folds
    nothing: the mark never moves back."""
    through = conn.execute(_DAILY_THROUGH).fetchone()[0]
    hour = int(now) - int(now) % 3600
    if hour > through:
        conn.execute(_FOLD_HOURS, (through, hour))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'daily_through'", (str(hour),))


def roll_up_account(conn: sqlite3.Connection, account_id: str) -> None:
    """Move one account's records from the inbox into the aggregates and `usage_records`, with their arrival
    numbers (inside the caller's transaction): what a read of that account needs, whatever else waits. It
    reads the whole inbox (no index) but writes only that account's rows: a read's cost stays a few
    milliseconds however long the roll-ups' cadence (`ROLL_UP_SECONDS`) lets the inbox grow."""
    for sql in _ROLL_UP_ACCOUNT:
        conn.execute(sql, (account_id,))


def roll_up(conn: sqlite3.Connection, now: float) -> None:
    """Move the inbox's records into the aggregates and `usage_records`, fold the closed hours into their
    days (`now`: the wall clock), and fold the queued spend (inside the caller's transaction)."""
    for sql in _ROLL_UP:
        conn.execute(sql)
    fold_hours(conn, now)
    fold_spend(conn)
