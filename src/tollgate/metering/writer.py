"""Group commit for the ledger: many requests' records land in one SQLite transaction.

Adding to the batch is synchronous and free; `commit()` waits until what was
added so far is durable. While one transaction runs, the next batch fills, so
at high concurrency each commit carries many requests and at low concurrency
a request waits for exactly one small commit.
"""

from __future__ import annotations

import asyncio
import logging

from tollgate.metering.records import LedgerBatch, SpendIncrement, StoredReservation, UsageRecord
from tollgate.store.base import Store

log = logging.getLogger("tollgate.ledger")

# Work added without a commit() (reservations, refusals) is written within this delay.
IDLE_FLUSH_SECONDS = 0.05
RETRY_SECONDS = 0.5


def _empty() -> LedgerBatch:
    return LedgerBatch([], [], [], [])


class LedgerWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._batch = _empty()
        self._added: set[str] = set()
        self._waiters: list[asyncio.Future] = []
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.commits = 0

    def add_record(self, record: UsageRecord) -> None:
        self._batch.records.append(record)
        self._soon()

    def add_increments(self, increments: list[SpendIncrement]) -> None:
        self._batch.increments.extend(increments)
        self._soon()

    def add_reservation(self, reservation: StoredReservation) -> None:
        self._batch.reservations_added.append(reservation)
        self._added.add(reservation.id)
        self._soon()

    def remove_reservation(self, reservation_id: str) -> None:
        if reservation_id in self._added:
            # Reserved and settled within one batch: neither needs to reach the disk.
            self._added.discard(reservation_id)
            self._batch.reservations_added = [r for r in self._batch.reservations_added if r.id != reservation_id]
        else:
            self._batch.reservations_removed.append(reservation_id)
        self._soon()

    async def commit(self) -> None:
        """Return once everything added so far is durable."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._start()
        await asyncio.shield(future)

    def _soon(self) -> None:
        if self._timer is None and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(IDLE_FLUSH_SECONDS, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._batch or self._waiters:
                batch, waiters = self._batch, self._waiters
                self._batch, self._waiters, self._added = _empty(), [], set()
                while True:
                    try:
                        if batch:
                            await self.store.write_ledger(batch)
                            self.commits += 1
                        break
                    except Exception:  # the disk is full or locked: keep the batch, retry
                        log.exception("ledger write failed; retrying")
                        await asyncio.sleep(RETRY_SECONDS)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
        finally:
            self._task = None

    async def close(self) -> None:
        """Write whatever is pending (clean shutdown loses nothing)."""
        await self.commit()
        if self._task is not None:
            await self._task
