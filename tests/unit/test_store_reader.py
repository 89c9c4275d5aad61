"""The embedded store's read threads (store/reader.py): their own connection, one snapshot per call, read-only,
at a lower CPU priority than the thread that created them (by as much as they are told). On a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from tollgate.store.reader import READER_NICE, ReadThread


def _database(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()


def _insert(path: Path, n: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO t VALUES (?)", (n,))
    conn.close()


def test_a_call_sees_one_snapshot_and_the_next_call_sees_what_was_committed_meanwhile(tmp_path):
    path = tmp_path / "r.db"
    _database(path)

    def twice(conn: sqlite3.Connection) -> tuple[int, int]:
        first = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        _insert(path, 2)  # another connection commits between the call's two statements
        return first, conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]

    async def main() -> tuple[tuple[int, int], int]:
        reader = ReadThread(path)
        await reader.open()
        try:
            inside = await reader.run(twice)
            after = await reader.run(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0])
            return inside, after
        finally:
            await reader.close()

    inside, after = asyncio.run(main())
    assert inside == (1, 1)  # one snapshot for the whole call
    assert after == 2


def test_it_cannot_write(tmp_path):
    path = tmp_path / "r.db"
    _database(path)

    async def main() -> None:
        reader = ReadThread(path)
        await reader.open()
        try:
            await reader.run(lambda c: c.execute("INSERT INTO t VALUES (3)"))
        finally:
            await reader.close()

    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        asyncio.run(main())
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread priorities from Linux's /proc")
@pytest.mark.parametrize("nice", [READER_NICE, 0])  # reads for people; the data plane's key reads
def test_its_thread_runs_at_a_lower_priority_than_the_callers(tmp_path, nice):
    path = tmp_path / "r.db"
    _database(path)

    def nice_of(tid: int) -> int:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        return int(stat[stat.rfind(")") + 2:].split()[16])  # field 19 of stat: nice

    async def main() -> tuple[int, int]:
        reader = ReadThread(path, nice=nice)
        await reader.open()
        try:
            tid = await reader.run(lambda _: threading.get_native_id())
            return nice_of(tid), nice_of(threading.get_native_id())
        finally:
            await reader.close()

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    reader_nice, own_nice = asyncio.run(main())
    assert own_nice == before  # the caller's thread is left as it was
    assert reader_nice == min(19, before + nice)
