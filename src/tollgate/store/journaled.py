"""Journaled ledger writes: durable by one append now, in SQLite in bulk a moment later.

`append` runs on the event loop and returns once the batch is in the journal
file. A timer hands everything journaled since the last hand-off to the
database thread as one transaction (at concurrency 1, a few dozen requests'
records in one commit). One hand-off is in flight at a time, so batches reach
SQLite in sequence order; a failed one is retried, and stays in the journal
meanwhile. Reads of ledger data call `catch_up` first, so they see every
settled request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tollgate.store.journal import Entry, Journal

log = logging.getLogger("tollgate.store")

# How long a journaled batch waits for others before they go to SQLite together.
APPLY_AFTER_SECONDS = 0.02
RETRY_AFTER_SECONDS = 0.5


class JournaledWrites:
    def __init__(self, journal: Journal, apply: Callable[[list[Entry]], asyncio.Future]) -> None:
        """`apply(entries)` queues their transaction on the database thread and returns its future."""
        self.journal = journal
        self._apply = apply
        self._pending: list[Entry] = []
        self._applying: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None

    def append(self, rows: Any) -> None:
        seq = self.journal.append(rows)
        self._pending.append((seq, rows))
        if self._timer is None and self._applying is None:
            self._timer = asyncio.get_running_loop().call_later(APPLY_AFTER_SECONDS, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._start()

    def _start(self) -> None:
        if self._applying is not None or not self._pending:
            return
        entries, self._pending = self._pending, []
        # Resolved by `_done` after its bookkeeping, never before: a reader that finds it done
        # finds the state after it too (awaiting a done future does not yield to the loop).
        finished = self._applying = asyncio.get_running_loop().create_future()
        self._apply(entries).add_done_callback(lambda future: self._done(entries, future, finished))

    def _done(self, entries: list[Entry], future: asyncio.Future, finished: asyncio.Future) -> None:
        self._applying = None
        error = RuntimeError("the ledger write was cancelled") if future.cancelled() else future.exception()
        try:
            if error is not None:
                log.error("writing journaled ledger batches into the database failed; retrying", exc_info=error)
                self._pending[:0] = entries  # everything pending came after them
                delay = RETRY_AFTER_SECONDS
            else:
                delay = APPLY_AFTER_SECONDS
                self.journal.applied_through(entries[-1][0])  # (a failure here only leaves files to delete later)
            if self._pending and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)
        finally:
            if error is None:
                finished.set_result(None)
            else:
                finished.set_exception(error)
                finished.exception()  # retrieved: a reader may or may not be waiting for it

    async def catch_up(self) -> None:
        """Return once every batch appended so far is in the database (raises if writing it fails)."""
        while self._pending or self._applying is not None:
            if self._applying is None:
                self._start()
            await asyncio.shield(self._applying)

    async def close(self) -> None:
        """Write what is pending; delete the journal if all of it made it, else keep it for the next start."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            await self.catch_up()
        except Exception:
            log.exception("the ledger journal stays on disk; the next start writes it into the database")
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.journal.close(all_applied=False)
            return
        self.journal.close(all_applied=True)
