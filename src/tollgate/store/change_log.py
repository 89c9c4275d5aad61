"""Reading the account model's change log (migration 0008): what changed after a given sequence number.

Triggers write one row per changed account, plan, subscription or key, numbered by SQLite in
commit order with no holes (AUTOINCREMENT, and a rolled-back write takes its number back), and
keep only the newest rows. So a reader that asks for the rows after the last number it saw either
gets every change since then, or sees a hole before the first row and knows it fell too far
behind (`Changes.complete` is False): it must then forget everything it cached.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from tollgate.store.base import Changes

# At most this many rows per read; a reader further behind reads again (or, past the log's 10,000, starts over).
READ_LIMIT = 5000


def changes_of(seq: int, rows: Sequence[Sequence[Any]], newest: int | None = None) -> Changes:
    """`Changes` from the log's rows (seq, kind, ref) after `seq`, in order; `newest` (the change counter) is
    needed only when there are none. Shared by both stores (postgres/changes.py)."""
    if not rows:
        assert newest is not None, "no rows: the newest number says whether the reader is current"
        return Changes(last=newest, items=(), complete=newest <= seq)
    complete = rows[0][0] == seq + 1 and all(row[1] != "all" for row in rows)
    return Changes(last=rows[-1][0], items=tuple((row[1], row[2]) for row in rows), complete=complete)


def changes_since(conn: sqlite3.Connection, seq: int) -> Changes:
    rows = conn.execute("SELECT seq, kind, ref FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                        (seq, READ_LIMIT)).fetchall()
    newest = None if rows else conn.execute("SELECT seq FROM change_seq").fetchone()[0]
    return changes_of(seq, rows, newest)
