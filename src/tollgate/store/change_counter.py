"""The account model's change counter, mirrored into an 8-byte file that every process maps.

Every request checks whether its cached key context is still current; reading the
counter from this shared memory costs a memory read, where a query would re-read a
database page after each ledger commit. Whichever process changes accounts, plans,
subscriptions or keys publishes the database's counter here after it commits.
"""

from __future__ import annotations

import mmap
import sqlite3
from pathlib import Path


class ChangeCounter:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + "-seq")
        self._map: mmap.mmap | None = None

    def open(self) -> None:
        with open(self.path, "a+b") as handle:
            if handle.seek(0, 2) < 8:
                handle.write(b"\0" * 8)
                handle.flush()
            self._map = mmap.mmap(handle.fileno(), 8)

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
