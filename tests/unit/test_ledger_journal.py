"""The ledger journal on real files: what a killed owner appended reaches the database exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement, StoredReservation
from tollgate.ledger.journal import Journal, JournalBusy, JournaledWrites
from tollgate.ledger.sql import apply_entries, journal_json, ledger_rows
from tollgate.store.sqlite import SQLiteStore

WINDOW = 1_764_000_000


def record(request_id: str, cost: int) -> UsageRecord:
    return UsageRecord(request_id, WINDOW + 1.0, "acct", "key", "sub", "m", None, None, "chat", 200, 3, 4,
                       cost, 1.0, False, False, window_start=WINDOW)


def batch(n: int) -> LedgerBatch:
    return LedgerBatch([record(f"r{n}", n)], [SpendIncrement("sub:s", WINDOW, n)], [], [])


async def read(path) -> tuple[int, list[str], list[StoredReservation]]:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        spent = await store.read_spend("sub:s", WINDOW)
        ids = [r.request_id for r in await store.usage_records("acct")]
        held = await store.load_reservations()
    finally:
        await store.close()
    return spent, ids, held


KILLED_OWNER = textwrap.dedent("""
    import asyncio, os, signal, sys
    sys.path[:0] = [{tests!r}]
    from test_ledger_journal import batch
    from tollgate.ledger.batch import LedgerBatch, StoredReservation
    from tollgate.store.sqlite import SQLiteStore

    async def main():
        store = SQLiteStore("sqlite:///" + sys.argv[1])
        await store.open()
        await store.claim_ledger()
        for n in range(1, 101):
            assert store.write_ledger_now(batch(n))
        held = StoredReservation("res-1", (("sub:s", {window}),), 500, 1.0, 2.0)
        await store.write_ledger(LedgerBatch([], [], [held], []))
        print("appended", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # before the timer hands anything to SQLite

    asyncio.run(main())
""")


def test_batches_journaled_by_a_killed_gateway_reach_the_database_on_the_next_open(tmp_path):
    path = tmp_path / "crash.db"
    script = KILLED_OWNER.format(tests=os.path.dirname(__file__), window=WINDOW)
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "appended" in done.stdout
    journal = Journal(path)
    assert journal.path.stat().st_size > 0  # the batches were only in the journal when it died

    spent, ids, held = asyncio.run(read(path))
    assert spent == sum(range(1, 101))
    assert ids == [f"r{n}" for n in range(1, 101)]
    assert [r.id for r in held] == ["res-1"]
    assert journal.files() == []  # written in, then deleted
    assert asyncio.run(read(path))[0] == spent  # and never applied twice


def test_a_torn_last_line_is_skipped_and_the_rest_applied(tmp_path):
    path = tmp_path / "torn.db"
    asyncio.run(read(path))  # create the database
    journal = Journal(path)
    assert journal.try_lock()
    journal.start(after_seq=0)
    for n in (1, 2, 3):
        journal.append(journal_json(ledger_rows(batch(n))))
    journal.close(all_applied=False)
    with open(journal.path, "ab") as handle:
        handle.write(b'[4, [[["r4"')  # the kill came in the middle of a write

    spent, ids, _ = asyncio.run(read(path))
    assert (spent, ids) == (6, ["r1", "r2", "r3"])


def test_entries_already_in_the_database_are_not_applied_again(tmp_path):
    path = tmp_path / "twice.db"
    asyncio.run(read(path))
    entries = [(1, ledger_rows(batch(5))), (2, ledger_rows(batch(7)))]
    conn = sqlite3.connect(path, isolation_level=None)
    assert apply_entries(conn, entries[:1]) == 1
    assert apply_entries(conn, entries) == 2  # entry 1 was in already: only 2 is written
    assert apply_entries(conn, entries) == 2
    assert conn.execute("SELECT spent FROM spend_totals").fetchone()[0] == 12
    with pytest.raises(RuntimeError, match="missing"):
        apply_entries(conn, [(4, ledger_rows(batch(1)))])  # a gap is refused, never skipped
    conn.close()


def test_one_gateway_owns_the_journal_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr("tollgate.store.sqlite.CLAIM_WAIT_SECONDS", 0.2)
    path = tmp_path / "owned.db"

    async def main():
        first = SQLiteStore(f"sqlite:///{path}")
        await first.open()
        await first.claim_ledger()
        await first.claim_ledger()  # the owner claiming again is a no-op
        second = SQLiteStore(f"sqlite:///{path}")
        await second.open()  # reading and editing accounts is fine meanwhile
        with pytest.raises(JournalBusy, match="another tollgate gateway"):
            await second.claim_ledger()
        first.write_ledger_now(batch(3))
        assert [r.request_id for r in await first.usage_records("acct")] == ["r3"]  # reads catch up first
        await first.close()
        await second.claim_ledger()  # free once the first one has stopped
        assert await second.read_spend("sub:s", WINDOW) == 3
        await second.close()

    asyncio.run(main())
    assert Journal(path).files() == []


def test_a_journal_under_constant_load_is_sealed_in_pieces_and_every_piece_replays(tmp_path, monkeypatch):
    """Never fully written in at one instant, the journal rotates; a piece goes once written in."""
    monkeypatch.setattr("tollgate.ledger.journal.ROTATE_BYTES", 2_000)
    path = tmp_path / "rotate.db"
    asyncio.run(read(path))
    journal = Journal(path)
    assert journal.try_lock()
    journal.start(after_seq=0)
    conn = sqlite3.connect(path, isolation_level=None)
    entries, pieces = [], set()
    for n in range(1, 41):
        entries.append((journal.append(journal_json(ledger_rows(batch(n)))), ledger_rows(batch(n))))
        if n > 10:  # the database stays ten entries behind, as under constant load
            applied = apply_entries(conn, entries[: n - 10])
            journal.applied_through(applied)
        pieces.update(p.name for p in journal.files() if p != journal.path)
        for piece in journal.files():
            if piece != journal.path:
                assert int(piece.suffix[1:]) > n - 10  # no piece is kept whose entries are all in
    conn.close()
    assert len(pieces) >= 3  # it rotated instead of growing
    journal.close(all_applied=False)  # the owner dies: entries 31-40 are only in the journal

    spent, ids, _ = asyncio.run(read(path))
    assert ids == [f"r{n}" for n in range(1, 41)]
    assert spent == sum(range(1, 41))
    assert journal.files() == []


def test_a_write_cut_short_by_a_full_disk_leaves_no_partial_line(tmp_path, monkeypatch):
    path = tmp_path / "full.db"
    asyncio.run(read(path))
    journal = Journal(path)
    assert journal.try_lock()
    journal.start(after_seq=0)
    journal.append(journal_json(ledger_rows(batch(1))))
    real_write, calls = os.write, []

    def disk_fills_up(fd, data):  # the OS takes half the line, then refuses the rest
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tollgate.ledger.journal.os.write", disk_fills_up)
    with pytest.raises(OSError):
        journal.append(journal_json(ledger_rows(batch(2))))
    monkeypatch.setattr("tollgate.ledger.journal.os.write", real_write)
    assert journal.append(journal_json(ledger_rows(batch(2)))) == 2  # the retry takes the same number
    journal.close(all_applied=False)

    spent, ids, _ = asyncio.run(read(path))
    assert (spent, ids) == (3, ["r1", "r2"])


def test_a_reader_arriving_as_a_write_completes_waits_for_it_instead_of_spinning(tmp_path):
    """The write's future is done, its callback not yet run: the reader must yield, not spin.

    Here the database is written synchronously and its future returned already done, which is
    the moment (between the database thread's answer and the callback) when a reader once spun
    forever on the event loop. Run on a thread so that a spinning loop fails the test.
    """
    path = tmp_path / "race.db"
    asyncio.run(read(path))
    outcome: list[object] = []

    async def main():
        conn = sqlite3.connect(path, isolation_level=None)

        def apply_now(entries):
            future = asyncio.get_running_loop().create_future()
            future.set_result(apply_entries(conn, entries))
            return future

        journal = Journal(path)
        assert journal.try_lock()
        journal.start(after_seq=0)
        writes = JournaledWrites(journal, apply_now)
        for n in (1, 2):
            writes.append(journal_json(ledger_rows(batch(n))))
        await writes.catch_up()
        writes.append(journal_json(ledger_rows(batch(3))))
        await writes.close()
        outcome.append(conn.execute("SELECT spent FROM spend_totals").fetchone()[0])
        conn.close()

    runner = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive(), "catch_up spun on the event loop"
    assert outcome == [6]
    assert Journal(path).files() == []


def test_a_lock_file_replaced_while_it_is_taken_is_not_trusted(tmp_path, monkeypatch):
    """Between opening the lock file and locking it, another process may replace it: lock the new one."""
    import fcntl

    db = tmp_path / "t.db"
    journal = Journal(db)
    real_flock = fcntl.flock
    replaced = []

    def flock_then_replace(fd, op):
        real_flock(fd, op)
        if not replaced:  # the first lock is taken on a file whose name then moves on
            replaced.append(os.fstat(fd).st_ino)
            os.unlink(journal.lock_path)
            journal.lock_path.write_bytes(b"")

    monkeypatch.setattr(fcntl, "flock", flock_then_replace)
    assert journal.try_lock()
    held = os.fstat(journal._lock_fd)
    assert held.st_ino != replaced[0]
    assert os.path.samestat(held, os.stat(journal.lock_path))
    monkeypatch.setattr(fcntl, "flock", real_flock)
    other = Journal(db)
    assert not other.try_lock()  # the lock is on the file its name points to: a second owner is refused
    journal.unlock()
    assert other.try_lock()
    other.unlock()


def test_a_read_under_steady_appends_waits_only_for_what_came_before_it(tmp_path):
    """A read of the ledger waits for the batches appended before it, not for the load to stop: under a
    batch every millisecond, `catch_up` returns while the load goes on (it used to wait for a moment with
    nothing pending, which a steady load never gives: a dashboard read took seconds)."""

    async def main() -> tuple[int, list[int], bool]:
        journal = Journal(tmp_path / "load.db")
        assert journal.try_lock()
        journal.start(after_seq=0)
        applied: list[int] = []

        def apply_slowly(entries):  # the database thread: 10 ms a hand-off
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            loop.call_later(0.01, lambda: (applied.extend(s for s, _ in entries), future.set_result(None)))
            return future

        writes = JournaledWrites(journal, apply_slowly)
        stop = asyncio.Event()

        async def load() -> None:
            for _ in range(100_000):  # bounded; stopped long before
                if stop.is_set():
                    return
                writes.append(b"[[],[],[],[]]")
                await asyncio.sleep(0.001)

        producer = asyncio.create_task(load())
        await asyncio.sleep(0.05)
        target = journal.last_seq
        await asyncio.wait_for(writes.catch_up(), 10)  # a hang guard: the old catch_up never returned here
        still_loading = not producer.done()
        stop.set()
        await producer
        await writes.close()
        return target, applied, still_loading

    target, applied, still_loading = asyncio.run(main())
    assert still_loading and max(applied) >= target
