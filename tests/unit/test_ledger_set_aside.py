"""One row the database cannot take never blocks the ledger: it is set aside, the rest goes in.

A batch the journal cannot hold is checked row by row first (`ledger_rows(checked=True)`);
a batch the database refuses (an older journal, a number past 64-bit, a NaN) is
written row by row; a start replays a journal with such rows, or with unreadable
lines, and goes on. Errors of the database itself (here: a read-only file) are no
row's fault and set nothing aside.
"""

from __future__ import annotations

import asyncio
import operator
import sqlite3

import orjson
import pytest

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement
from tollgate.ledger.journal import Journal
from tollgate.ledger.sql import USAGE_FIELDS, apply_entries, journal_json, ledger_rows
from tollgate.ledger.writer import LedgerWriter
from tollgate.store.sqlite import SQLiteStore

WINDOW = 1_764_000_000
row_of = operator.attrgetter(*USAGE_FIELDS)


def record(request_id: str, tokens: int = 3, **extra) -> UsageRecord:
    r = UsageRecord(request_id, WINDOW + 1.0, "acct", "key", "sub", "m", None, None, "chat", 200, tokens, 4,
                    10, 1.0, False, False, window_start=WINDOW)
    for name, value in extra.items():
        setattr(r, name, value)
    return r


async def open_store(path) -> SQLiteStore:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    return store


def table(path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_rows_no_database_can_take_are_set_aside_before_the_journal(caplog):
    batch = LedgerBatch(
        [record("ok"), record("too-big", tokens=2**63), record("nan", latency_ms=float("nan")),
         record("dict", model={"a": 1}), record("surrogate", error="bad \ud800 text")],
        [SpendIncrement("sub:s", WINDOW, 5), SpendIncrement("sub:s", WINDOW, 2**64)], [], [])
    usage, spend, added, removed, rejected = ledger_rows(batch, checked=True)
    assert [r[0] for r in usage] == ["ok", "surrogate"]  # text is repaired, not rejected
    assert usage[1][USAGE_FIELDS.index("error")] == "bad ? text"
    assert spend == [("sub:s", WINDOW, 5)] and added == [] and removed == []
    assert sorted(r[1] for r in rejected) == ["spend_counters"] + ["usage_records"] * 3
    assert all(isinstance(r[3], str) for r in rejected)
    assert "rejected_records" in caplog.text
    orjson.dumps(ledger_rows(batch, checked=True))  # what reaches the journal can always be written
    with pytest.raises(TypeError):
        orjson.dumps(ledger_rows(batch))  # unchecked (the usual, fast way), it could not


def test_a_batch_the_database_refuses_goes_in_row_by_row(tmp_path):
    path = tmp_path / "rows.db"
    asyncio.run(_close(path))  # the schema
    # As an older gateway journaled them: no check, no set-aside part.
    old = [[row_of(record("a")), row_of(record("b", tokens=2**63)), row_of(record("c"))], [("sub:s", WINDOW, 7)],
           [], []]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    assert apply_entries(conn, [(1, orjson.loads(orjson.dumps(old)))]) == 1
    conn.execute("COMMIT")
    conn.close()
    asyncio.run(_close(path))  # a store closing rolls the inbox up into usage_records (store/rollup.py)
    assert table(path, "SELECT request_id FROM usage_records ORDER BY id") == [("a",), ("c",)]
    assert table(path, "SELECT spent FROM spend_totals") == [(7,)]
    [(kind, reason, payload)] = table(path, "SELECT kind, reason, payload FROM rejected_records")
    assert kind == "usage_records" and "not a 64-bit integer" in reason and '"b"' in payload


def test_rows_the_bulk_write_cannot_take_go_in_row_by_row(tmp_path):
    """The usual write is one statement per table over the journal's JSON; a row the database refuses
    there (a null where the column takes none) sends the hand-off row by row, and only that row aside."""
    path = tmp_path / "bulk.db"
    asyncio.run(_close(path))
    bad = list(row_of(record("b")))
    bad[USAGE_FIELDS.index("model")] = None
    rows = journal_json(([row_of(record("a")), tuple(bad)], [("sub:s", WINDOW, 7)], [], [], []))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    assert apply_entries(conn, [(1, rows), (2, journal_json(([row_of(record("c"))], [], [], [], [])))]) == 2
    conn.execute("COMMIT")
    conn.close()
    asyncio.run(_close(path))  # a store closing rolls the inbox up into usage_records (store/rollup.py)
    assert table(path, "SELECT request_id FROM usage_records ORDER BY id") == [("a",), ("c",)]
    assert table(path, "SELECT spent FROM spend_totals") == [(7,)]
    [(kind, reason, payload)] = table(path, "SELECT kind, reason, payload FROM rejected_records")
    assert kind == "usage_records" and "IntegrityError" in reason and '"b"' in payload


async def _close(path) -> None:
    store = await open_store(path)
    await store.close()


def test_errors_of_the_database_itself_set_nothing_aside(tmp_path):
    path = tmp_path / "ro.db"
    asyncio.run(_close(path))
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        apply_entries(conn, [(1, ledger_rows(LedgerBatch([record("a")], [], [], [])))])
    conn.close()
    assert table(path, "SELECT count(*) FROM rejected_records") == [(0,)]
    assert table(path, "SELECT count(*) FROM usage_records") == [(0,)]


def test_a_start_replays_a_journal_with_bad_rows_and_unreadable_lines(tmp_path):
    path = tmp_path / "replay.db"
    asyncio.run(_close(path))
    journal = Journal(path)
    lines = [
        orjson.dumps((1, [[row_of(record("a")), row_of(record("big", tokens=2**63))], [], [], []])),
        b"this line was damaged",
        orjson.dumps((3, "not a batch")),
        orjson.dumps(("four", [])),  # no sequence number
        orjson.dumps((5, [[row_of(record("e"))], [("sub:s", WINDOW, 9)], [], []])),
        b'[6, [[["torn',  # a write cut short by a kill: skipped, not set aside
    ]
    journal.path.write_bytes(b"\n".join(lines))
    (tmp_path / (journal.path.name + ".old")).write_text("an operator moved this aside")  # not a journal piece

    async def start() -> list[str]:
        store = await open_store(path)
        await store.claim_ledger()
        ids = [r.request_id for r in await store.usage_records("acct")]
        assert await store.read_spend("sub:s", WINDOW) == 9
        await store.close()
        return ids

    assert asyncio.run(start()) == ["a", "e"]
    kinds = sorted(r[0] for r in table(path, "SELECT kind FROM rejected_records"))
    assert kinds == ["journal_entry", "journal_line", "journal_line", "usage_records"]
    assert asyncio.run(start()) == ["a", "e"]  # and the next start has nothing left to do


def test_the_writer_is_never_blocked_by_a_record_the_database_cannot_take(tmp_path):
    path = tmp_path / "writer.db"

    async def main() -> list[str]:
        store = await open_store(path)
        await store.claim_ledger()
        writer = LedgerWriter(store)
        # Past SQLite's integers but within the journal's (refused by the database), past both
        # (refused by the journal), a NaN (null in the journal, refused by a NOT NULL column), bad text.
        writer.add_record(record("big", tokens=2**63))
        writer.add_record(record("huge", tokens=2**64 + 5))
        writer.add_record(record("nan", latency_ms=float("nan")))
        writer.add_record(record("text", error="\udcff"))
        writer.add_increments([SpendIncrement("sub:s", WINDOW, 4)])
        await asyncio.wait_for(writer.commit(alone=True), 10)
        writer.add_record(record("next"))
        await asyncio.wait_for(writer.commit(), 10)  # the group-commit path, after it
        ids = [r.request_id for r in await store.usage_records("acct")]
        assert await store.read_spend("sub:s", WINDOW) == 4
        await writer.close()
        await store.close()
        return ids

    assert asyncio.run(main()) == ["text", "next"]
    assert [r[0] for r in table(path, "SELECT kind FROM rejected_records")] == ["usage_records"] * 3
