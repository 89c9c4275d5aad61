"""The account model's change counter, mirrored into an 8-byte file that every process maps.

Every request checks whether its cached key context is still current; reading the
counter from this shared memory costs a memory read, where a query would re-read a
database page after each ledger commit. Whichever process changes accounts, plans,
subscriptions or keys publishes the database's counter here after it commits.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
from pathlib import Path

from tollgate.store.files import FILE_MODE, tighten_fd


class ChangeCounter:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + "-seq")
        self._map: mmap.mmap | None = None

    def open(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)  # the owner's only, like the database
        try:
            tighten_fd(fd)
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)  # zeros: counter 0
            self._map = mmap.mmap(fd, 8)
        finally:
            os.close(fd)

    def read(self) -> int:
        return int.from_bytes(self._map[:8], "little")

    def publish(self, conn: sqlite3.Connection) -> None:
        """Copy the database's counter (kept by triggers) to the shared file."""
        seq = conn.execute("SELECT seq FROM change_seq").fetchone()[0]
        self._map[:8] = seq.to_bytes(8, "little")

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
