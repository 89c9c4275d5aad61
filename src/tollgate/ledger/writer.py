"""The ledger's write path: what requests settle, made durable before their answers leave.

Adding to the batch is synchronous and free; `commit()` returns once what was
added so far is durable: for the gateway's SQLite store, one append to its
journal (ledger/journal.py). A request alone in flight writes its own batch
on the spot; requests settling together share one write (group commit: while
one write runs, the next batch fills).

This runs once or more per request, so it keeps per-call work small: a
reservation settled within its batch is dropped by one dict removal, and the
idle-flush timer is armed at most once per IDLE_FLUSH_SECONDS rather than
armed and cancelled around every request.
"""

from __future__ import annotations

import asyncio
import logging

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement, StoredReservation
from tollgate.ledger.persistence import LedgerStore

log = logging.getLogger("tollgate.ledger")

# Work added without a commit() (reservations, refusals) is written within this delay.
IDLE_FLUSH_SECONDS = 0.05
RETRY_SECONDS = 0.5


class LedgerWriter:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self._records: list[UsageRecord] = []
        self._increments: list[SpendIncrement] = []
        # Added and not yet written, by id: one settled in the same batch is simply dropped.
        self._added: dict[str, StoredReservation] = {}
        self._removed: list[str] = []
        self._waiters: list[asyncio.Future] = []
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None

    def add_record(self, record: UsageRecord) -> None:
        self._records.append(record)
        self._soon()

    def add_increments(self, increments: list[SpendIncrement]) -> None:
        self._increments.extend(increments)
        self._soon()

    def add_reservation(self, reservation: StoredReservation) -> None:
        self._added[reservation.id] = reservation
        self._soon()

    def remove_reservation(self, reservation_id: str) -> None:
        # Reserved and settled within one batch: neither needs to reach the disk.
        if self._added.pop(reservation_id, None) is None:
            self._removed.append(reservation_id)
            self._soon()

    def _pending(self) -> bool:
        return bool(self._records or self._increments or self._added or self._removed)

    def _take(self) -> LedgerBatch:
        batch = LedgerBatch(self._records, self._increments, list(self._added.values()), self._removed)
        self._records, self._increments, self._added, self._removed = [], [], {}, []
        return batch

    def _restore(self, batch: LedgerBatch) -> None:
        """Put a batch that could not be written here back at the head of the queue."""
        self._records[:0] = batch.records
        self._increments[:0] = batch.increments
        self._added = {**{r.id: r for r in batch.reservations_added}, **self._added}
        self._removed[:0] = batch.reservations_removed

    async def commit(self, alone: bool = False) -> None:
        """Return once everything added so far is durable.

        `alone`: the caller is the only request in flight. Its batch is written on the spot
        (an append to the store's journal, or a small SQLite commit on a store without one):
        nobody could be served meanwhile, and a hand-off would only add wake-ups to this
        request's latency. Otherwise requests settling together share one write (group commit).
        """
        if self._task is None and not self._pending():
            return  # nothing added, nothing being written: all of it is on disk already
        if alone and self._task is None:
            batch = self._take()
            try:
                written = self.store.write_ledger_now(batch)
            except Exception:
                log.exception("ledger write failed; retrying through the group commit")
                written = False
            if written:
                return
            self._restore(batch)
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._start()
        # A cancelled caller only cancels its own future; the flush goes on for the others.
        await future

    def _soon(self) -> None:
        if self._timer is None and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(IDLE_FLUSH_SECONDS, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._pending():
            self._start()

    def _start(self) -> None:
        # The idle timer is left to fire: it finds nothing pending, or a flush running, and
        # does nothing. Cancelling it on every commit would cost more than letting it run.
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending() or self._waiters:
                batch, waiters = self._take(), self._waiters
                self._waiters = []
                while True:
                    try:
                        if batch:
                            await self.store.write_ledger(batch)
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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.commit()
        if self._task is not None:
            await self._task
