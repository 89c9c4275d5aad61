"""Reading the account model's change log (migration 0008): what changed after a given sequence number.

Triggers write one row per changed account, plan, subscription or key, numbered by SQLite in
commit order with no holes (AUTOINCREMENT, and a rolled-back write takes its number back), and
keep only the newest rows. So a reader that asks for the rows after the last number it saw either
gets every change since then, or sees a hole before the first row and knows it fell too far
behind (`Changes.complete` is False): it must then forget everything it cached.
"""

from __future__ import annotations

import sqlite3

from tollgate.store.base import Changes

# At most this many rows per read; a reader further behind reads again (or, past the log's 10,000, starts over).
READ_LIMIT = 5000


def changes_since(conn: sqlite3.Connection, seq: int) -> Changes:
    rows = conn.execute("SELECT seq, kind, ref FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                        (seq, READ_LIMIT)).fetchall()
    if not rows:
        newest = conn.execute("SELECT seq FROM change_seq").fetchone()[0]
        return Changes(last=newest, items=(), complete=newest <= seq)
    complete = rows[0][0] == seq + 1 and all(kind != "all" for _, kind, _ in rows)
    return Changes(last=rows[-1][0], items=tuple((kind, ref) for _, kind, ref in rows), complete=complete)
