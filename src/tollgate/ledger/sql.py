"""The ledger's rows in SQLite: a batch as rows, and journal entries written in exactly once."""

from __future__ import annotations

import json
import operator
import sqlite3

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.ledger.journal import Entry

USAGE_FIELDS = tuple(UsageRecord.__dataclass_fields__)
_usage_row = operator.attrgetter(*USAGE_FIELDS)  # a record -> its row, in one C call

INSERT_USAGE = (f"INSERT INTO usage_records ({', '.join(USAGE_FIELDS)})"
                 f" VALUES ({', '.join('?' * len(USAGE_FIELDS))})")
_ADD_SPEND = ("INSERT INTO spend_counters (pool, window_start, spent) VALUES (?, ?, ?)"
              " ON CONFLICT(pool, window_start) DO UPDATE SET spent = spent + excluded.spent")
_ADD_RESERVATION = "INSERT OR REPLACE INTO reservations (id, pools, amount, created_at, expires_at) VALUES (?,?,?,?,?)"


def ledger_rows(batch: LedgerBatch) -> tuple[list, list, list, list]:
    """A batch as the rows it writes: (usage records, spend increments, reservations added, removed)."""
    return (
        list(map(_usage_row, batch.records)),
        [(i.pool, i.window_start, i.amount) for i in batch.increments],
        [(r.id, json.dumps(r.pools), r.amount, r.created_at, r.expires_at) for r in batch.reservations_added],
        [(i,) for i in batch.reservations_removed],
    )


def apply_rows(c: sqlite3.Connection, rows: tuple[list, list, list, list] | list) -> None:
    records, increments, added, removed = rows
    if records:
        c.executemany(INSERT_USAGE, records)
    if increments:
        c.executemany(_ADD_SPEND, increments)
    if added:
        c.executemany(_ADD_RESERVATION, added)
    if removed:
        c.executemany("DELETE FROM reservations WHERE id = ?", removed)


def apply_entries(c: sqlite3.Connection, entries: list[Entry]) -> int:
    """Journal entries the database does not have yet, in order; the sequence number applied last.

    The number is stored in the same transaction as the rows, so an entry is never applied twice.
    The entries' rows go in as one statement per table (a reservation is always added in an
    earlier entry than the one that removes it, so adds-then-removes keeps their order).
    """
    row = c.execute("SELECT value FROM meta WHERE key = 'ledger_seq'").fetchone()
    applied = start = int(row[0]) if row else 0
    merged: tuple[list, list, list, list] = ([], [], [], [])
    for seq, rows in entries:
        if seq <= applied:
            continue
        if seq != applied + 1:
            raise RuntimeError(f"ledger journal entry {seq} follows {applied}: an entry is missing. The journal"
                               " beside the database is damaged; move it aside to start without it (what it"
                               f" holds from entry {applied + 1} on is then not in the ledger)")
        for into, part in zip(merged, rows):
            into.extend(part)
        applied = seq
    if applied == start:
        return applied  # nothing new: no write at all
    apply_rows(c, merged)
    c.execute("INSERT INTO meta (key, value) VALUES ('ledger_seq', ?)"
              " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(applied),))
    return applied
