"""The PostgreSQL store: every gateway process on every machine shares one database.

Selected by `database = "postgresql://user:pw@host:port/db"` (store/open.py). Around a bounded asyncpg
pool (connection.py): the schema (schema.py), the account model (accounts.py, lifecycle.py), the change
counter kept current by LISTEN and a poll (changes.py), the ledger's rows through a local journal per
process (ledger.py), and the read side's mixins (usage, request log, series, end users, alerts).

Nothing here is module-level state: two stores in one process (a test's second "process") are apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg

from tollgate.ledger.journal import BacklogLimit
from tollgate.store.base import Changes
from tollgate.store.postgres import changes as change_log
from tollgate.store.postgres.accounts import PostgresAccounts
from tollgate.store.postgres.alerts import PostgresAlerts
from tollgate.store.postgres.connection import PgSettings, bounded, connect, create_pool, on_connection, parse_url
from tollgate.store.postgres.end_users import PostgresEndUsers
from tollgate.store.postgres.ledger import PostgresLedger
from tollgate.store.postgres.lifecycle import PostgresLifecycle
from tollgate.store.postgres.request_log import PostgresRequestLog
from tollgate.store.postgres.schema import migrate
from tollgate.store.postgres.series import PostgresSeries
from tollgate.store.postgres.usage import PostgresUsage

T = TypeVar("T")
log = logging.getLogger("tollgate.store")

DEFAULT_JOURNAL_DIR = Path(".tollgate/journal")
# The database's own id (made by its first migration): journal slots name the database they journal for.
_DATABASE_ID = "SELECT value FROM meta WHERE key = 'database_id'"
CLOSE_SECONDS = 10.0
# Migrating at start may rewrite big tables (a later migration); a database that does not answer still fails it.
MIGRATE_SECONDS = 600.0


class PostgresStore(PostgresAccounts, PostgresLifecycle, PostgresLedger, PostgresUsage, PostgresRequestLog,
                    PostgresSeries, PostgresEndUsers, PostgresAlerts):
    def __init__(self, url: str, backlog: BacklogLimit | None = None, journal_dir: Path | str | None = None, *,
                 pool_max: int | None = None, request_timeout: float | None = None) -> None:
        """`url` may carry `?pool_max=&request_timeout=&statement_timeout=` (seconds); arguments given here win."""
        self._settings: PgSettings = parse_url(url, pool_max, request_timeout)
        self._backlog_limit = backlog or BacklogLimit()
        self._journal_dir = Path(journal_dir) if journal_dir is not None else DEFAULT_JOURNAL_DIR
        self._pool: asyncpg.Pool | None = None  # type: ignore[assignment]
        self._database_id = ""
        self._changes = change_log.ChangeWatcher(lambda: connect(self._settings), self._newest_change)
        self._init_ledger()

    def __repr__(self) -> str:
        return f"PostgresStore({self._settings.safe_url!r})"

    # -- plumbing -----------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate, start watching the change log, take a journal slot and replay what is left."""
        self._pool = await create_pool(self._settings)
        try:
            async with self._pool.acquire() as conn:
                applied = await bounded(MIGRATE_SECONDS, migrate(conn))
                self._database_id = await conn.fetchval(_DATABASE_ID)
            if applied:
                log.info("PostgreSQL schema migrated to %d on %s", applied[-1], self._settings.safe_url)
            await self._changes.start()
            await self._open_ledger()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Write what the journal holds (kept on disk if PostgreSQL will not take it), then drain the pool."""
        await self._close_ledger()
        await self._changes.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), CLOSE_SECONDS)
            except (asyncio.TimeoutError, Exception):
                pool.terminate()

    async def _call(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], transaction: bool = False,
                    timeout: float | None = None) -> T:
        """`fn(conn)` on a pooled connection within the statement timeout (StoreUnavailable past it)."""
        assert self._pool is not None, "store is not open"
        return await on_connection(self._pool, timeout or self._settings.statement_timeout, fn, transaction)

    async def _request(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`_call` for the request path: the short timeout."""
        return await self._call(fn, timeout=self._settings.request_timeout)

    async def _change(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """A change to the account model, in one transaction that also reads the change-log number its triggers
        took: this process sees its own change at once (others through changes.py)."""
        async def run(conn: asyncpg.Connection) -> tuple[T, int]:
            result = await fn(conn)
            return result, await conn.fetchval(change_log.NEWEST)

        result, seq = await self._call(run, transaction=True)
        self._changes.saw(seq)
        return result

    async def _newest_change(self) -> int:
        return await self._request(lambda c: c.fetchval(change_log.NEWEST))

    def change_seq(self) -> int:
        """The newest change-log number this process knows of (memory only; see changes.py)."""
        return self._changes.seq

    async def changes_since(self, seq: int) -> Changes:
        return await self._request(lambda c: change_log.changes_since(c, seq))

    # -- meta ---------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self._call(lambda c: c.fetchval("SELECT value FROM meta WHERE key = $1", key))

    async def set_meta(self, key: str, value: str) -> None:
        await self._call(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key, value))
