"""The PostgreSQL store's request log: pages of raw usage records, newest first (`store/request_log.py`'s SQL).

A part of `PostgresStore`. The cursor's lookup, the walk's bound and the page are read in one snapshot,
so a record pruned (or written) between them cannot turn a valid cursor into a wrong page. PostgreSQL
walks the time indexes of the schema without SQLite's planner hints; the page and where its walk stopped
are the embedded store's, row for row.
"""

from __future__ import annotations

import asyncpg

from tollgate.store.base import UnknownCursor
from tollgate.store.dialect import POSTGRES
from tollgate.store.postgres.usage_reading import PostgresReading, fetch
from tollgate.store.request_log import (
    SCAN_ROWS,
    LogPage,
    RequestFilter,
    cursor_query,
    logged_of,
    page_of,
    page_query,
    scan_end_query,
)


class PostgresRequestLog(PostgresReading):
    """`request_log` of `PostgresStore`."""

    async def request_log(self, request_filter: RequestFilter, before: int | None, limit: int,
                          scan: int = SCAN_ROWS) -> LogPage:
        lookup = cursor_query(request_filter, before)
        if lookup is None and scan_end_query(POSTGRES, request_filter, before, None, scan) is None:
            rows = await self._ledger_rows(page_query(POSTGRES, request_filter, before, None, limit))
            return page_of([logged_of(row) for row in rows], limit, None)

        async def read(conn: asyncpg.Connection) -> LogPage:
            created_at = None
            if lookup is not None:
                found = await fetch(conn, lookup)
                if not found:
                    raise UnknownCursor(str(before))
                created_at = found[0][0]
            bound = scan_end_query(POSTGRES, request_filter, before, created_at, scan)
            scan_end = None
            if bound is not None:
                end = await fetch(conn, bound)
                scan_end = (end[0][0], end[0][1]) if end else None
            rows = await fetch(conn, page_query(POSTGRES, request_filter, before, created_at, limit, scan_end))
            return page_of([logged_of(row) for row in rows], limit, scan_end)

        return await self._snapshot(read)
