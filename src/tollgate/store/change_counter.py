"""The account model's change counter, mirrored into an 8-byte file that every process maps.

Every request checks whether its cached key contexts are still current; reading the
counter from this shared memory costs a memory read, where a query would re-read a
database page after each ledger commit. Whichever process changes accounts, plans,
subscriptions or keys publishes the database's counter here after it commits; when it
moved, readers ask the change log what changed (store/change_log.py).

Publishing reads the database's counter and writes it while holding an exclusive lock on the
file: without it, two processes committing at once could publish in the wrong order (the
earlier number last), and the later change would stay unseen until the next one.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import sqlite3
from pathlib import Path

from tollgate.store.files import FILE_MODE, tighten_fd


class ChangeCounter:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + "-seq")
        self._map: mmap.mmap | None = None
        self._fd: int | None = None

    def open(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)  # the owner's only, like the database
        try:
            tighten_fd(fd)
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)  # zeros: counter 0
            self._map = mmap.mmap(fd, 8)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def read(self) -> int:
        return int.from_bytes(self._map[:8], "little")

    def publish(self, conn: sqlite3.Connection) -> None:
        """Copy the database's counter (kept by triggers) to the shared file."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            # Read under the lock: whoever publishes last has read the newest committed counter.
            seq = conn.execute("SELECT seq FROM change_seq").fetchone()[0]
            self._map[:8] = seq.to_bytes(8, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
