"""WAL checkpoints on their own thread and connection, off the request path.

SQLite's automatic checkpoint runs inside whichever commit pushes the WAL over
its threshold: every few hundred requests, one of them pays for copying the
whole WAL back into the database file (milliseconds, the p99 at concurrency 1).
The store turns that off and calls `wrote()` after its commits instead; every
`every` changed rows this thread runs the checkpoint.

It holds the store's connection lock meanwhile. A checkpoint that races a stream
of commits never catches up with them, and SQLite restarts the WAL from its
start only when a checkpoint has copied all of it: so the writer is kept out
for those milliseconds. The event loop does not wait for that lock (it hands
its commit to the database thread when the lock is taken), so requests keep
being served while the WAL is copied back and reset.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("tollgate.store")

# Rows changed between checkpoints. Journaled batches reach SQLite a few dozen at a time, so
# a row costs a fraction of a WAL page: this is about SQLite's own default of 1,000 pages.
CHECKPOINT_EVERY_ROWS = 5000


class Checkpointer:
    def __init__(self, path: Path, writer_lock: threading.Lock, every: int = CHECKPOINT_EVERY_ROWS) -> None:
        self.path = path
        self.writer_lock = writer_lock
        self.every = every
        self.checkpoints = 0
        self._due = 0  # rows changed since the last wake-up
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="tollgate-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self, rows: int) -> None:
        """Called after a commit that changed `rows` rows (from any thread; a counter, no lock)."""
        self._due += rows
        if self._due >= self.every:
            self._due = 0
            self._wake.set()

    def _serve(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    with self.writer_lock:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:  # busy or locked: the next wake-up tries again
                    log.warning("WAL checkpoint failed; retrying later", exc_info=True)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()
