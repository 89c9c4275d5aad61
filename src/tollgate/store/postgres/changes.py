"""The account model's change counter across processes and machines: LISTEN, with a poll behind it.

`change_seq()` runs on every request, so it must be a plain read of memory. Every change's
transaction NOTIFYs `tollgate_changes` with the newest change-log number (the log's trigger,
migrations/postgresql/0013_baseline.sql); a connection of this process LISTENs and raises the number
here the moment one arrives. Notifications can be lost while that connection is down, so the newest
number is also read every POLL_SECONDS: a key revoked through any process is refused by this one
within about that long even when the listener is reconnecting. The number only ever grows here
(a stale poll answer never takes it back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from tollgate.store.base import Changes
from tollgate.store.change_log import READ_LIMIT, changes_of

log = logging.getLogger("tollgate.store")

CHANNEL = "tollgate_changes"
POLL_SECONDS = 0.5
NEWEST = "SELECT seq FROM change_seq WHERE id = 1"


class ChangeWatcher:
    """The newest change-log number this process knows of, kept current by LISTEN and a poll."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]],
                 newest: Callable[[], Awaitable[int]], poll_seconds: float = POLL_SECONDS) -> None:
        """`connect()` opens the listening connection; `newest()` reads change_seq (bounded, may raise)."""
        self._connect = connect
        self._newest = newest
        self._poll_seconds = poll_seconds
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self.seq = 0
        self.reconnects = 0

    def saw(self, seq: int) -> None:
        """A number read by this process (its own change's commit, a notification, a poll)."""
        if seq > self.seq:
            self.seq = seq

    async def start(self) -> None:
        self.saw(await self._newest())
        await self._listen()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tollgate-pg-changes")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drop()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self.saw(int(payload))
        except ValueError:
            log.warning("ignoring a %s notification that is not a number", CHANNEL)

    async def _listen(self) -> None:
        """(Re)open the listening connection; a failure leaves it closed for the next round to retry."""
        try:
            conn = await self._connect()
        except Exception as exc:  # the database is down: the poll says so too, the next round retries
            log.debug("cannot listen for account changes: %s", exc)
            return
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except Exception:
            await conn.close(timeout=1)
            raise
        self._conn = conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=1)
            except Exception:
                conn.terminate()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            if self._conn is None or self._conn.is_closed():
                await self._drop()
                self.reconnects += 1
                await self._listen()
            try:
                self.saw(await self._newest())
            except Exception as exc:  # down or slow: keys already seen keep working from the cache
                log.debug("cannot read the change counter: %s", exc)


async def changes_since(conn: asyncpg.Connection, seq: int) -> Changes:
    """The change log after `seq`, folded as SQLite's is (store/change_log.py; numbers in commit order, no holes)."""
    rows = await conn.fetch("SELECT seq, kind, ref FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2", seq, READ_LIMIT)
    return changes_of(seq, rows, None if rows else await conn.fetchval(NEWEST))
