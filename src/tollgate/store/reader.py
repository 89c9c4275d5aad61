"""The embedded store's reads off its writer thread: a thread and a read-only connection each.

Two of them. Reads for people (dashboards, reports, the request log) at a lower CPU priority than the
data plane; and the key reads of the data plane (a key that missed the cache, the change log), at its
priority, so that they never queue behind the ledger's writes and roll-ups (below).

Why: a dashboard's chart or report is tens of milliseconds of SQLite work. On the database thread it
took its turn between the ledger's writes, and it took half of the core from the event loop while it
ran: every data-plane request in flight waited the longer (bench/dashboard_scale.py, the p99 with
tabs open). Here it runs on a thread of its own, with its own read-only connection (WAL: readers never
block the writer, nor it them), niced by READER_NICE: when the core is busy, the kernel runs the event
loop and the ledger's writes first, and the reads take what is left. SQLite gives the interpreter's lock
up around every step of a statement, so the event loop gets it back at once. On a box with cores to
spare nothing changes but that the reads run beside the writes.

The key reads: a request whose key missed the cache, and every request while the account model's change
counter is ahead of the cache (the change log is read first), waited for the writer thread, behind a
roll-up of the ledger's records (0.5-1.2 s with 100,000 keys in use): with keys created and revoked all
day, every request of the gateway stalled behind each roll-up (bench/many_keys.py, issue 18). WAL lets
them read beside the writer; a change is published (store/change_counter.py) only after it committed,
so a read that begins after the counter moved sees the change.

Each call runs in one read transaction: a report of several statements sees one snapshot.
What a report reads must be in the database first: the store hands the journaled batches over (and rolls
up the aggregates) on its writer thread before it asks this one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tollgate.store.worker import DatabaseThread

log = logging.getLogger("tollgate.store")
T = TypeVar("T")

READER_NICE = 10  # about a tenth of a busy core's time (Linux's weights: 1024 at nice 0, 110 at 10)
READER_CACHE_KIB = 16 * 1024


def _lower_priority(nice: int) -> None:
    """Nice this thread alone, `nice` below its process (Linux schedules threads: a thread id is a
    `PRIO_PROCESS` target)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError):  # another OS, or a sandbox that forbids it: the reads run as they are
        log.info("could not lower the priority of the store's read thread", exc_info=True)


class ReadThread:
    """One thread, one read-only connection to `path`; `nice`: how far below its process the thread runs."""

    def __init__(self, path: Path, name: str = "tollgate-sqlite-reader", nice: int = READER_NICE,
                 cache_kib: int = READER_CACHE_KIB) -> None:
        self.path = path
        self.nice = nice
        self.cache_kib = cache_kib
        self._thread = DatabaseThread(name)
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self.nice:
            _lower_priority(self.nice)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(f"PRAGMA cache_size=-{self.cache_kib}")
        return conn

    async def open(self) -> None:
        self._conn = await self._thread.run(self._connect)

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future:
        """`fn(connection)` in one read transaction on the thread; a future on the caller's loop."""
        return self._thread.run(lambda: self._in_snapshot(fn))

    def _in_snapshot(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        assert conn is not None, "the store's read thread is not open"
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")  # a read transaction: nothing to write, the snapshot is let go

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._thread.run(conn.close)
        self._thread.stop()
