"""The embedded ledger: budget state in this process's memory, made durable through SQLite.

One gateway process owns the counters (the server refuses to start more than
one worker on the embedded store), so every reserve and settle is a few dict
operations with no await in between: atomic by construction. Settled spend and
usage records are group-committed before the response completes; reservations
are written too, so that a crash leaves them to expire on their own after
restart instead of vanishing (which could let in-flight spend go unbilled).

Reserve and settle run on every request, so they are plain loops over the one
or two pools a key draws from, with no per-call allocation they can avoid:
grant ids come from a counter, and settling wakes waiting admissions only when
some are waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Sequence

from tollgate.domain.grants import Grant, Settled
from tollgate.domain.pools import Pool, PoolState
from tollgate.domain.refusals import BudgetExhausted, LedgerBusy
from tollgate.domain.usage import UsageRecord
from tollgate.domain.windows import window_end, window_start
from tollgate.ledger.batch import SpendIncrement, StoredReservation
from tollgate.ledger.journal import backlog_stats
from tollgate.ledger.persistence import LedgerStore
from tollgate.ledger.protocol import RateCharge
from tollgate.ledger.writer import LedgerWriter

Slot = tuple[str, int]  # (pool id, window start)
# Counters of windows over a day old are forgotten by a scan this often (seconds).
PRUNE_EVERY = 600.0
# A request refused because the ledger's writes are behind is told to come back after this (seconds).
BACKLOG_RETRY_AFTER = 1.0


class EmbeddedLedger:
    takes_rate = False  # the in-process limiter is a plain call: `rate` is ignored here

    def __init__(
        self,
        store: LedgerStore,
        writer: LedgerWriter,
        *,
        reservation_ttl: float,
        admission_wait: float,
        backlog_wait: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.backlog_wait = backlog_wait
        self.backlog_waits = 0  # admissions that found the backlog past its bound and waited
        self.backlog_refusals = 0  # ... and were refused when it did not come back within the wait
        self.writer = writer
        self.ttl = reservation_ttl
        self.admission_wait = admission_wait
        self.clock = clock
        self._spent: dict[Slot, int] = {}
        self._reserved: dict[Slot, int] = {}
        self._grants: dict[str, Grant] = {}
        # Reservations found on disk at start: their owner crashed; held until expires_at.
        self._orphans: dict[str, StoredReservation] = {}
        self._settled = asyncio.Event()
        self._waiting = 0  # admissions waiting on _settled
        # Grant ids: unique across restarts by a random prefix, then a counter (no syscall per request).
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count()
        self._next_prune = 0.0

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        await self.store.claim_ledger()
        now = self.clock()
        for stored in await self.store.load_reservations():
            if stored.expires_at <= now:
                self.writer.remove_reservation(stored.id)
                continue
            for pool_id, start in stored.pools:
                await self._load((pool_id, start))
                self._reserved[(pool_id, start)] = self._reserved.get((pool_id, start), 0) + stored.amount
            self._orphans[stored.id] = stored
        await self.writer.commit()

    async def close(self) -> None:
        await self.writer.close()

    async def _load(self, slot: Slot) -> None:
        if slot not in self._spent:
            spent = await self.store.read_spend(*slot)
            self._spent.setdefault(slot, spent)

    # -- admission ------------------------------------------------------------

    async def reserve(self, pools: Sequence[Pool], want: int, minimum: int, rate: RateCharge | None = None) -> Grant:
        if self.store.backlog_full():
            self.backlog_waits += 1
            if not await self.store.backlog_room(self.backlog_wait):
                self.backlog_refusals += 1
                raise LedgerBusy(BACKLOG_RETRY_AFTER)
        deadline: float | None = None
        spent, reserved = self._spent, self._reserved
        while True:
            now = self.clock()
            slots = [(pool, (pool.id, window_start(now, pool.window))) for pool in pools]
            for _, slot in slots:
                if slot not in spent:
                    await self._load(slot)
            # From here to the return or the wait: no await, so no other request interleaves.
            room = None
            for pool, slot in slots:
                left = pool.limit - spent[slot] - reserved.get(slot, 0)
                if room is None or left < room:
                    room = left
            if room is not None and room >= minimum:
                return self._grant(slots, min(want, room), now)
            for pool, slot in slots:
                if pool.limit - spent[slot] < minimum:
                    raise BudgetExhausted(pool, window_end(slot[1], pool.window))
            # Only other requests' reservations stand in the way: wait for one to settle.
            if deadline is None:
                deadline = time.monotonic() + self.admission_wait
            left = deadline - time.monotonic()
            binding = min(slots, key=lambda ps: ps[0].limit - spent[ps[1]] - reserved.get(ps[1], 0))
            if left <= 0:
                raise BudgetExhausted(binding[0], window_end(binding[1][1], binding[0].window))
            event = self._settled
            self._waiting += 1
            try:
                await asyncio.wait_for(event.wait(), timeout=min(left, self._until_window_end(slots, now)))
            except asyncio.TimeoutError:
                pass
            finally:
                self._waiting -= 1

    def _until_window_end(self, slots: list[tuple[Pool, Slot]], now: float) -> float:
        ends = [window_end(slot[1], pool.window) for pool, slot in slots]
        soonest = min((e for e in ends if e is not None), default=None)
        return max(0.001, soonest - now) if soonest is not None else 3600.0

    def _grant(self, slots: list[tuple[Pool, Slot]], amount: int, now: float) -> Grant:
        reserved = self._reserved
        for _, slot in slots:
            reserved[slot] = reserved.get(slot, 0) + amount
        grant = Grant(
            id=f"{self._id_prefix}{next(self._ids)}",
            amount=amount,
            charges=tuple((pool, slot[1]) for pool, slot in slots),
            created_at=now,
            expires_at=now + self.ttl,
            states=tuple(self._state(pool, slot[1]) for pool, slot in slots),
        )
        self._grants[grant.id] = grant
        self.writer.add_reservation(StoredReservation(
            grant.id, tuple(slot for _, slot in slots), amount, now, grant.expires_at,
        ))
        return grant

    # -- settlement -----------------------------------------------------------

    def _free(self, grant: Grant) -> bool:
        if self._grants.pop(grant.id, None) is None:
            return False
        reserved, amount = self._reserved, grant.amount
        for pool, start in grant.charges:
            slot = (pool.id, start)
            reserved[slot] = reserved.get(slot, 0) - amount
        self.writer.remove_reservation(grant.id)
        return True

    def _wake(self) -> None:
        """Let admissions waiting for room look again; free when none is waiting."""
        if self._waiting:
            self._settled.set()
            self._settled = asyncio.Event()

    async def settle(self, grant: Grant, cost: int, record: UsageRecord, rate: RateCharge | None = None) -> Settled:
        charged = min(max(cost, 0), grant.amount)
        if not self._free(grant):
            charged = 0  # already settled: never charge twice
        spent = self._spent
        if charged:
            increments = []
            for pool, start in grant.charges:
                slot = (pool.id, start)
                spent[slot] = spent.get(slot, 0) + charged
                increments.append(SpendIncrement(pool.id, start, charged))
            self.writer.add_increments(increments)
        record.cost = charged
        self.writer.add_record(record)
        self._wake()
        states = tuple(self._state(pool, start) for pool, start in grant.charges)
        # No other request holds a reservation: nobody would be served while we wait anyway.
        await self.writer.commit(alone=not self._grants)
        return Settled(charged, states)

    def _state(self, pool: Pool, start: int) -> PoolState:
        slot = (pool.id, start)
        return PoolState(pool, start, window_end(start, pool.window), self._spent.get(slot, 0), self._reserved.get(slot, 0))

    async def release(self, grant: Grant) -> None:
        if self._free(grant):
            self._wake()

    async def record(self, record: UsageRecord) -> None:
        # Durable before the refusal is answered, as a settlement is: a client that reads its request
        # log right after a refusal finds it there (and a crash cannot lose it).
        self.writer.add_record(record)
        await self.writer.commit(alone=not self._grants)

    async def expire(self) -> int:
        now = self.clock()
        gone = [o for o in self._orphans.values() if o.expires_at <= now]
        for orphan in gone:
            del self._orphans[orphan.id]
            for pool_id, start in orphan.pools:
                self._reserved[(pool_id, start)] = self._reserved.get((pool_id, start), 0) - orphan.amount
            self.writer.remove_reservation(orphan.id)
        if gone:
            self._wake()
        self._prune(now)
        return len(gone)

    def _prune(self, now: float) -> None:
        """Forget counters of windows that ended over a day ago (they stay on disk).

        A scan of every counter, so at most every PRUNE_EVERY seconds: with a provider's
        hundreds of thousands of keys, a scan each second cost a few per cent of the core.
        """
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        stale = [slot for slot in self._spent if slot[1] and slot[1] < now - 2 * 86400 and not self._reserved.get(slot)]
        for slot in stale:
            del self._spent[slot]
            self._reserved.pop(slot, None)

    # -- reading --------------------------------------------------------------

    async def read(self, pool: Pool) -> PoolState:
        now = self.clock()
        start = window_start(now, pool.window)
        slot = (pool.id, start)
        await self._load(slot)
        return self._state(pool, start)

    def open_reservations(self) -> int:
        return len(self._grants) + len(self._orphans)

    def write_stats(self) -> dict:
        return {
            **backlog_stats(self.store.backlog()),
            "backlog_waits": self.backlog_waits,
            "backlog_refusals": self.backlog_refusals,
            "reservations_open": self.open_reservations(),
        }
