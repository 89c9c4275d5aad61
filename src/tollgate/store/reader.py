"""The embedded store's reads for people (dashboards, reports, the request log): their own thread and
connection, at a lower CPU priority than the data plane.

Why: a dashboard's chart or report is tens of milliseconds of SQLite work. On the database thread it
took its turn between the ledger's writes, and it took half of the core from the event loop while it
ran: every data-plane request in flight waited the longer (bench/dashboard_scale.py, the p99 with
tabs open). Here it runs on a thread of its own, with its own read-only connection (WAL: readers never
block the writer, nor it them), niced by READER_NICE: when the core is busy, the kernel runs the event
loop and the ledger's writes first, and the reads take what is left. SQLite gives the interpreter's lock
up around every step of a statement, so the event loop gets it back at once. On a box with cores to
spare nothing changes but that the reads run beside the writes.

Each call runs in one read transaction: a report of several statements sees one snapshot.
What it reads must be in the database first: the store hands the journaled batches over (and rolls
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


def _lower_priority() -> None:
    """Nice this thread alone, READER_NICE below its process (Linux schedules threads: a thread id is a
    `PRIO_PROCESS` target)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + READER_NICE))
    except (AttributeError, OSError):  # another OS, or a sandbox that forbids it: the reads run as they are
        log.info("could not lower the priority of the store's read thread", exc_info=True)


class ReadThread:
    """One thread, one read-only connection to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = DatabaseThread("tollgate-sqlite-reader")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        _lower_priority()
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
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
