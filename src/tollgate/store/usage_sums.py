"""Usage reads on the SQLite connection: sums grouped in SQL, and records for the cost lab.

Each function here runs on the store's database thread (`SQLiteStore._ledger_read`),
never on the event loop: an account's records are summed by SQLite (integer
nano-dollars, exact in its 64-bit integers) and only the buckets come back.
Every query names the account and a time range, so it walks the
`usage_account_time` or `usage_key_time` index over that range only, or the
hourly aggregates (`usage_hourly`, rolled up from every record: store/rollup.py).
The queries, and how pruned history is read from the aggregates, are
`usage_queries.py`'s, shared with the PostgreSQL store; this runs them.
"""

from __future__ import annotations

import sqlite3

from tollgate.domain.spend import Spend, SpendSummary
from tollgate.domain.usage import UsageRecord
from tollgate.store import usage_queries as q
from tollgate.store.dialect import SQLITE, Query


def pruned_before(conn: sqlite3.Connection) -> float:
    """Raw records before this time may have been pruned (0: none ever were)."""
    row = conn.execute(q.PRUNED_BEFORE).fetchone()
    return q.horizon_of(row[0] if row else None)


def _rows(conn: sqlite3.Connection, queries: list[Query]) -> list:
    return [row for sql, args in queries for row in conn.execute(sql, args)]


def usage_summary(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float | None,
                  until: float | None, window: int | None, per_key: bool) -> SpendSummary:
    """Spend grouped by UTC day and budget window, rolled up by `summarize`; with `per_key`, the
    account's keys and theirs too. One call on the database thread, where the ledger is also
    written: both reads see the same records."""
    horizon = pruned_before(conn)
    summary = q.summary_of(_rows(conn, q.summary_queries(SQLITE, horizon, account_id, key_id, since, until, window)),
                           window)
    if per_key:
        summary.by_key = usage_by_key(conn, account_id, since, until)
    return summary


def usage_total(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float) -> Spend:
    """Spend from `since` to now (`usage_queries.total_queries`)."""
    return q.total_of(_rows(conn, q.total_queries(SQLITE, pruned_before(conn), account_id, key_id, since)))


def usage_by_key(conn: sqlite3.Connection, account_id: str, since: float | None,
                 until: float | None) -> list[tuple[str, str, Spend]]:
    """(key id, name, spend) of every key of the account, oldest key first; a key with no requests spent 0."""
    rows = _rows(conn, q.by_key_queries(SQLITE, pruned_before(conn), account_id, since, until))
    return q.by_key_of(rows, conn.execute(*q.keys_query(account_id)))


def usage_records(conn: sqlite3.Connection, account_id: str, key_id: str | None, since: float | None,
                  until: float | None) -> list[UsageRecord]:
    """The records themselves (the cost lab reads them all), built into objects here, off the event loop."""
    return [UsageRecord(*r) for r in conn.execute(*q.records_query(SQLITE, account_id, key_id, since, until))]


ACCOUNTS_PER_PRUNE = 1000  # accounts one prune call looks at, at most (each one index seek)


def prune_usage(conn: sqlite3.Connection, before: int, limit: int, after: str) -> tuple[int, str | None]:
    """Delete up to `limit` raw records admitted before `before` (an hour boundary), account by account from
    the first account id above `after`; (how many, the `after` to go on from, None when every account is done).

    The horizon moves first, in the same transaction: from then on reads take the time before it
    from the aggregates, so no instant sees a record counted twice or not at all. Each account's
    old records are found on `usage_account_time` (an index seek, then its oldest rows): exact
    whatever order the records were written in, and never a scan of the table.
    """
    conn.execute("INSERT INTO meta (key, value) VALUES ('usage_pruned_before', ?) ON CONFLICT(key)"
                 " DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))", (str(before),))
    deleted = 0
    for _ in range(ACCOUNTS_PER_PRUNE):
        row = conn.execute("SELECT account_id FROM usage_records WHERE account_id > ? ORDER BY account_id LIMIT 1",
                           (after,)).fetchone()
        if row is None:
            return deleted, None
        deleted += conn.execute(
            "DELETE FROM usage_records WHERE id IN (SELECT id FROM usage_records"
            " WHERE account_id = ? AND created_at < ? ORDER BY created_at LIMIT ?)",
            (row[0], before, limit - deleted)).rowcount
        if deleted >= limit:
            return deleted, after  # this account may have more: the next call starts at it again
        after = row[0]
    return deleted, after


def records_page(conn: sqlite3.Connection, after_id: int, before: float | None, limit: int) -> list[tuple[int, UsageRecord]]:
    """Raw records after `after_id` in id order, admitted before `before` (all when None): an export's page."""
    return [(row[0], UsageRecord(*row[1:])) for row in conn.execute(*q.records_page_query(after_id, before, limit))]
