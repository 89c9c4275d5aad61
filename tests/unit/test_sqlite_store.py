"""The embedded store's own mechanics on a real SQLite file: migrations and WAL checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement
from tollgate.store.migrate import migrations, split_sql
from tollgate.store.sqlite import SQLiteStore


def record(request_id: str, cost: int) -> UsageRecord:
    return UsageRecord(request_id, 1_764_000_000.0, "acct", "key", "sub", "m", None, None, "chat", 200, 3, 4,
                       cost, 1.0, False, False, window_start=1_764_000_000, client="test/1")


def test_the_lean_usage_table_keeps_every_record_written_before_it(tmp_path):
    """A database written by the first two schema versions opens with its records and ids intact."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in migrations():
        if version > 2:
            break
        for statement in split_sql(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    # The record's fields that schema version 2 had (later versions add columns).
    columns = {row[1] for row in conn.execute("PRAGMA table_info(usage_records)")}
    fields = tuple(f for f in UsageRecord.__dataclass_fields__ if f in columns)
    for n, cost in ((1, 150), (2, 0), (3, 99)):
        row = record(f"r{n}", cost)
        conn.execute(f"INSERT INTO usage_records ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                     tuple(getattr(row, f) for f in fields))
    conn.execute("DELETE FROM usage_records WHERE request_id = 'r2'")  # ids need not be dense
    conn.close()

    async def main():
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        try:
            before = await store.usage_records("acct")
            await store.write_ledger(LedgerBatch([record("r4", 7)], [], [], []))
            after = await store.usage_records("acct")
        finally:
            await store.close()
        return before, after

    before, after = asyncio.run(main())
    assert [(r.request_id, r.cost, r.client) for r in before] == [("r1", 150, "test/1"), ("r3", 99, "test/1")]
    assert [r.request_id for r in after] == ["r1", "r3", "r4"]

    conn = sqlite3.connect(path)
    ids = [row[0] for row in conn.execute("SELECT id FROM usage_records ORDER BY id")]
    assert ids == [1, 3, 4]
    table_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'usage_records'").fetchone()[0]
    assert "AUTOINCREMENT" not in table_sql
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(usage_records)")}
    assert indexes == {"usage_key_time", "usage_account_time", "usage_account_refused"}  # the last: 4xx/5xx only
    assert conn.execute("PRAGMA user_version").fetchone()[0] == max(v for v, _ in migrations())
    conn.close()


def test_checkpoints_run_off_the_writers_thread_and_keep_the_wal_small(tmp_path):
    path = tmp_path / "wal.db"

    async def main():
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        checkpointer = store._checkpointer
        checkpointer.every = 200
        try:
            for n in range(3_000):
                batch = LedgerBatch([record(f"r{n}", 5)], [SpendIncrement("sub:sub", 1_764_000_000, 5)], [], [])
                if not store.write_ledger_now(batch):  # a checkpoint holds the connection
                    await store.write_ledger(batch)
            deadline = time.monotonic() + 10
            while checkpointer.checkpoints < 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            wal_pages = store._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0][1]
            spent = await store.read_spend("sub:sub", 1_764_000_000)
        finally:
            await store.close()
        return checkpointer.checkpoints, wal_pages, spent

    checkpoints, wal_pages, spent = asyncio.run(main())
    # 6,000 rows changed at 200 per checkpoint: the thread ran many times, the WAL was reset
    # again and again instead of growing with every write (3,000 commits write ~9,000 pages).
    # Half of that is the bar: on a loaded machine the checkpoint thread runs later, and the WAL
    # was seen at 2,112 pages there (1,000-1,500 on a quiet one), never near 9,000.
    assert checkpoints >= 5
    assert wal_pages < 4_500
    assert spent == 15_000


def test_a_journal_written_before_the_cache_columns_replays_after_the_upgrade():
    """Usage rows journaled by an older version (without the record's last fields) are written with nulls
    there, not set aside: an upgrade replays its journal like any other start."""
    from tollgate.ledger.sql import USAGE_FIELDS, apply_entries, ledger_rows
    from tollgate.store.migrate import migrate
    from tollgate.store.rollup import roll_up

    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    full = ledger_rows(LedgerBatch([record("new", 5)], [], [], []))
    old_width = USAGE_FIELDS.index("cache_write_tokens")
    short = [list(full[0][0])[:old_width]]
    apply_entries(conn, [(1, [short, [], [], []]), (2, [[list(full[0][0])], [], [], []])])
    roll_up(conn, time.time())  # from the inbox into usage_records (store/rollup.py)
    rows = conn.execute("SELECT request_id, cost, cache_write_tokens, cache_saved FROM usage_records").fetchall()
    assert rows == [("new", 5, None, None), ("new", 5, None, None)]
    assert conn.execute("SELECT COUNT(*) FROM rejected_records").fetchone()[0] == 0
