"""The ledger's rows in SQLite: a batch as rows, and journal entries written in exactly once.

One row the database cannot take (a count past SQLite's 64-bit integers, a value
of the wrong type) must never stop the rows around it: every later batch would
fail behind it, reads of the ledger with them, and the next start would replay
it and fail again. So a batch the database refuses is written row by row
(`apply_rows`): each row refused for what it holds is set aside in
`rejected_records`, in the same transaction, with the reason and a clear log line.
A batch the journal cannot hold (a number past 64 bits, text that is not UTF-8:
its JSON fails) is checked row by row before it is journaled
(`ledger_rows(checked=True)`), its bad rows set aside the same way. The check runs
only then: the usual batch costs what it always did. Errors of the disk or the
lock (sqlite3.OperationalError) are no row's fault: they fail the batch, which is retried.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import sqlite3
import time
from typing import Any

import orjson

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.ledger.journal import Entry

log = logging.getLogger("tollgate.ledger")

USAGE_FIELDS = tuple(UsageRecord.__dataclass_fields__)
_usage_row = operator.attrgetter(*USAGE_FIELDS)  # a record -> its row, in one C call

# Usage rows and spend are appended to unindexed tables the store rolls up into their homes every few
# seconds (store/rollup.py, migration 0016): a commit writes their last pages, where rows ordered by key
# wrote a page per key with many keys.
INSERT_USAGE = (f"INSERT INTO usage_inbox ({', '.join(USAGE_FIELDS)})"
                 f" VALUES ({', '.join('?' * len(USAGE_FIELDS))})")
_ADD_SPEND = "INSERT INTO spend_unfolded (pool, window_start, spent) VALUES (?, ?, ?)"
_ADD_RESERVATION = "INSERT OR REPLACE INTO reservations (id, pools, amount, created_at, expires_at) VALUES (?,?,?,?,?)"
_REMOVE_RESERVATION = "DELETE FROM reservations WHERE id = ?"
_REJECT = "INSERT INTO rejected_records (created_at, kind, reason, payload) VALUES (?, ?, ?, ?)"
# The statement, and the set-aside name, of each part of a batch's rows, in order.
PARTS = (("usage_records", INSERT_USAGE), ("spend_counters", _ADD_SPEND), ("reservations", _ADD_RESERVATION),
         ("reservations_removed", _REMOVE_RESERVATION))

INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1  # SQLite's INTEGER
# What the database refuses a row for, by what the row holds. Anything else (a locked or full
# disk, a closed connection) fails the whole write, to be retried.
ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.DataError,
              OverflowError, TypeError, ValueError)

Rows = tuple[list, list, list, list, list]  # usage, spend, reservations added, removed, set aside

# Each usage column's kind, from the record's annotations: "int", "real", "text", "bool", with "?" if nullable.
_KINDS = {"int": "int", "float": "real", "str": "text", "bool": "bool"}
USAGE_KINDS = tuple(
    _KINDS[f.type.split(" | ")[0]] + ("?" if f.type.endswith("| None") else "")  # type: ignore[union-attr]
    for f in UsageRecord.__dataclass_fields__.values()
)
SPEND_KINDS = ("text", "int", "int")
RESERVATION_KINDS = ("text", "text", "int", "real", "real")
REMOVED_KINDS = ("text",)


def _fault(kind: str, value: object) -> str | None:
    """Why SQLite (or the journal's JSON) cannot take `value` in a column of `kind`, or None."""
    if value is None:
        return None if kind.endswith("?") else "is null"
    kind = kind.rstrip("?")
    t = type(value)
    if kind == "int" or kind == "bool":
        if t is bool or (t is int and INT_MIN <= value <= INT_MAX):  # type: ignore[operator]
            return None
        return "is not a 64-bit integer" if t is int else f"is a {t.__name__}, not an integer"
    if kind == "real":
        if (t is float and math.isfinite(value)) or (t is int and INT_MIN <= value <= INT_MAX):  # type: ignore[arg-type]
            return None
        return "is not a finite number"
    if t is not str:
        return f"is a {t.__name__}, not text"
    return None


def _show(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python prints, or a row holding one
        return f"an integer of {value.bit_length()} bits" if isinstance(value, int) else "a value too large to print"
    return text if len(text) <= 60 else text[:60] + "..."


def _text(value: str) -> str:
    """Text as UTF-8 can hold it (a lone surrogate would fail the journal and SQLite alike)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")


def checked_row(row: tuple, kinds: tuple[str, ...]) -> tuple[tuple, str | None]:
    """(the row, with text made UTF-8 safe, None), or (the row, why no database can take it)."""
    if len(row) != len(kinds):
        return row, f"has {len(row)} values, not {len(kinds)}"
    fixed = None
    for i, (kind, value) in enumerate(zip(kinds, row)):
        why = _fault(kind, value)
        if why is not None:
            return row, f"column {i + 1} ({_show(value)}) {why}"
        if type(value) is str and not value.isascii():
            safe = _text(value)
            if safe is not value:
                fixed = fixed or list(row)
                fixed[i] = safe
    return (tuple(fixed) if fixed else row), None


def rejection(kind: str, reason: str, payload: Any) -> tuple:
    """A set-aside row for `rejected_records` (the payload as JSON text, any value written somehow), logged."""
    try:
        text = json.dumps(payload, default=_show, ensure_ascii=True)
    except (ValueError, RecursionError):
        text = json.dumps(_show(payload))
    log.error("the ledger set aside a %s row the database cannot take (%s); the rest of the ledger goes on. "
              "The row is kept in the rejected_records table: %.300s", kind, reason, text)
    return (time.time(), kind, reason, text)


def _sorted(kind: str, kinds: tuple[str, ...], rows: list, rejected: list) -> list:
    good = []
    for row in rows:
        row, why = checked_row(row, kinds)
        if why is None:
            good.append(row)
        else:
            rejected.append(rejection(kind, why, row))
    return good


def ledger_rows(batch: LedgerBatch, checked: bool = False) -> Rows:
    """A batch as the rows it writes: (usage records, spend increments, reservations added, removed,
    rows set aside). `checked`: every value is checked, and a row no database could take is set
    aside here (the rows can then always be written as JSON)."""
    if not checked:
        return (
            list(map(_usage_row, batch.records)),
            [(i.pool, i.window_start, i.amount) for i in batch.increments],
            [(r.id, json.dumps(r.pools), r.amount, r.created_at, r.expires_at) for r in batch.reservations_added],
            [(i,) for i in batch.reservations_removed],
            [],
        )
    rejected: list = []
    return (
        _sorted("usage_records", USAGE_KINDS, list(map(_usage_row, batch.records)), rejected),
        _sorted("spend_counters", SPEND_KINDS, [(i.pool, i.window_start, i.amount) for i in batch.increments],
                rejected),
        _sorted("reservations", RESERVATION_KINDS,
                [(r.id, json.dumps(r.pools), r.amount, r.created_at, r.expires_at) for r in batch.reservations_added],
                rejected),
        _sorted("reservations_removed", REMOVED_KINDS, [(i,) for i in batch.reservations_removed], rejected),
        rejected,
    )


def _bulk(c: sqlite3.Connection, rows: Rows | list) -> None:
    for (_, sql), part in zip(PARTS, rows):
        if part:
            c.executemany(sql, part)


def _one_by_one(c: sqlite3.Connection, rows: Rows | list) -> list:
    """Each row on its own; those the database refuses for what they hold come back set aside."""
    rejected = []
    for (kind, sql), part in zip(PARTS, rows):
        for row in part:
            try:
                c.execute(sql, row)
            except ROW_ERRORS as exc:
                rejected.append(rejection(kind, f"{type(exc).__name__}: {exc}", row))
    return rejected


def apply_rows(c: sqlite3.Connection, rows: Rows | list) -> None:
    """Write a batch's rows (inside the caller's transaction): in bulk, or row by row when one is refused."""
    rejected = list(rows[4]) if len(rows) > 4 else []  # set aside before the journal (older journals: none)
    c.execute("SAVEPOINT ledger_rows")
    try:
        _bulk(c, rows)
    except ROW_ERRORS:
        c.execute("ROLLBACK TO ledger_rows")
        rejected += _one_by_one(c, rows)
    except BaseException:
        c.execute("ROLLBACK TO ledger_rows")
        c.execute("RELEASE ledger_rows")
        raise
    c.execute("RELEASE ledger_rows")
    set_aside(c, rejected)


def _well_formed(rows: object) -> bool:
    return isinstance(rows, (list, tuple)) and 4 <= len(rows) <= 5 and all(
        isinstance(part, list) and all(isinstance(row, (list, tuple)) for row in part) for part in rows)


# A whole hand-off in one statement per table: SQLite reads the rows out of the journal's own JSON
# (json_each), so the database thread needs Python (and its GIL, which the busy event loop holds)
# once per statement instead of once per row. Per row, Python's sqlite3 binds the parameters, then
# lets go of the GIL for the step and waits to get it back: under load that wait was the ledger's
# whole backlog. A row's JSON array has its values in the table's column order; a usage row
# journaled by an older version is shorter, and `->>` past its end is null (its newer columns are
# nullable). Usage and reservation rows go in in journal order (their ids say so).
def _from(part: int) -> str:
    return f"FROM json_each(?1) AS e, json_each(e.value, '$[{part}]') AS r"


def _values(count: int) -> str:
    return ", ".join(f"r.value ->> {i}" for i in range(count))


_BULK = (
    f"INSERT INTO usage_inbox ({', '.join(USAGE_FIELDS)}) SELECT {_values(len(USAGE_FIELDS))} {_from(0)}"
    " ORDER BY e.key, r.key",
    f"INSERT INTO spend_unfolded (pool, window_start, spent) SELECT {_values(3)} {_from(1)}",
    f"INSERT OR REPLACE INTO reservations (id, pools, amount, created_at, expires_at) SELECT {_values(5)} {_from(2)}"
    " ORDER BY e.key, r.key",
    f"DELETE FROM reservations WHERE id IN (SELECT r.value ->> 0 {_from(3)})",
    f"INSERT INTO rejected_records (created_at, kind, reason, payload) SELECT {_values(4)} {_from(4)}",
)
_KINDS_OF_PART = (("usage_records", USAGE_KINDS), ("spend_counters", SPEND_KINDS),
                  ("reservations", RESERVATION_KINDS), ("reservations_removed", REMOVED_KINDS))


def journal_json(rows: Rows) -> bytes:
    """A batch's rows as the journal and the bulk write hold them: JSON whose integers all fit SQLite's.

    Integers past 2**53 are refused here (TypeError), so that a row holding one goes through
    `ledger_rows(checked=True)`, which sets aside any past SQLite's 64 bits: SQLite's JSON would
    read one as a float, silently. `checked` rows are written without that limit.
    """
    return orjson.dumps(rows, option=orjson.OPT_STRICT_INTEGER)



def journal_line(batch: LedgerBatch) -> tuple[list, bytes]:
    """A batch's rows and the journal line that holds them: the rows as JSON, or, when a value is one JSON cannot
    hold, the rows checked one by one (the bad ones set aside, ledger_rows(checked=True))."""
    parts = ledger_rows(batch)
    try:
        return parts, journal_json(parts)
    except TypeError:
        parts = ledger_rows(batch, checked=True)
        return parts, orjson.dumps(parts)

def checked_json(rows: object, seq: int) -> bytes:
    """Rows from outside this process's writes (a replayed journal, an older version's): each row checked
    as `ledger_rows(checked=True)` checks them, bad ones and a part that is no batch set aside."""
    if not _well_formed(rows):
        return orjson.dumps([[], [], [], [], [rejection("journal_entry", f"entry {seq} is not a ledger batch", rows)]])
    rejected = list(rows[4]) if len(rows) > 4 else []  # type: ignore[index]
    parts = [_sorted(kind, kinds, [tuple(r) for r in part], rejected)
             for (kind, kinds), part in zip(_KINDS_OF_PART, _widened_parts(rows))]  # type: ignore[arg-type]
    return orjson.dumps([*parts, rejected])


def _widened_parts(rows: list) -> list:
    return [widened(rows[0]), *rows[1:4]]


def widened(usage_rows: list) -> list:
    """Usage rows journaled by an older version, before the record's last fields were added (each one
    nullable, at the end): padded with nulls, so that an upgrade replays its journal like any other."""
    width = len(USAGE_FIELDS)
    return [row if len(row) >= width else [*row, *([None] * (width - len(row)))] for row in usage_rows]


def _parsed(document: str) -> Rows:
    """The batches of a bulk document merged into one batch of rows (for the row-by-row path)."""
    merged: Rows = ([], [], [], [], [])
    for rows in orjson.loads(document):
        for into, part in zip(merged, [widened(rows[0]), *rows[1:]]):
            into.extend(tuple(r) for r in part)
    return merged


def _apply_document(c: sqlite3.Connection, document: str) -> None:
    """Write the batches of `document` (a JSON array of journal rows) inside the caller's transaction:
    one statement per table, or row by row when the database refuses a row for what it holds."""
    c.execute("SAVEPOINT ledger_bulk")
    try:
        for sql in _BULK:
            c.execute(sql, (document,))
    except ROW_ERRORS:
        c.execute("ROLLBACK TO ledger_bulk")
        c.execute("RELEASE ledger_bulk")
        apply_rows(c, _parsed(document))
        return
    except BaseException:
        c.execute("ROLLBACK TO ledger_bulk")
        c.execute("RELEASE ledger_bulk")
        raise
    c.execute("RELEASE ledger_bulk")


def apply_entries(c: sqlite3.Connection, entries: list[Entry], skip_gaps: bool = False) -> int:
    """Journal entries the database does not have yet, in order; the sequence number applied last.

    An entry's rows are the JSON its journal line holds (`journal_json`, this process's own
    writes), or rows as Python values (a replayed journal, a test), checked row by row first.
    The number is stored in the same transaction as the rows, so an entry is never applied twice.
    The entries' rows go in as one statement per table (a reservation is always added in an
    earlier entry than the one that removes it, so adds-then-removes keeps their order).
    A missing entry is refused (the batches after it wait), except when `skip_gaps`: at start-up,
    where a journal line that could not be read was set aside already.
    """
    row = c.execute("SELECT value FROM meta WHERE key = 'ledger_seq'").fetchone()
    applied = start = int(row[0]) if row else 0
    documents: list[bytes] = []
    for seq, rows in entries:
        if seq <= applied:
            continue
        if seq != applied + 1:
            if not skip_gaps:
                raise RuntimeError(f"ledger journal entry {seq} follows {applied}: an entry is missing. The journal"
                                   " beside the database is damaged; move it aside to start without it (what it"
                                   f" holds from entry {applied + 1} on is then not in the ledger)")
            log.error("the ledger journal has no entries %d to %d (unreadable lines, set aside); "
                      "going on from entry %d", applied + 1, seq - 1, seq)
        documents.append(rows if type(rows) is bytes else checked_json(rows, seq))
        applied = seq
    if applied == start:
        return applied  # nothing new: no write at all
    _apply_document(c, (b"[" + b",".join(documents) + b"]").decode("utf-8"))
    c.execute("INSERT INTO meta (key, value) VALUES ('ledger_seq', ?)"
              " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(applied),))
    return applied


def set_aside(c: sqlite3.Connection, rejected: list) -> None:
    """Rows made by `rejection`, into `rejected_records` (inside the caller's transaction)."""
    if rejected:
        c.executemany(_REJECT, rejected)
