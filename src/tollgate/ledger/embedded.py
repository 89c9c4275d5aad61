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
some are waiting. Each pool's window is one `_Counter` (spent and reserved side
by side), found once per pool at admission and held by the grant until it
settles: with a hundred thousand keys in use every lookup in a map that large
is a trip to main memory, and a request made a dozen of them (bench/many_keys.py).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


@dataclass(slots=True)
class _Counter:
    """One pool's window: the spend settled in it, and what open reservations hold on it."""

    spent: int
    reserved: int = 0

    def state(self, pool: Pool, start: int) -> PoolState:
        return PoolState(pool, start, window_end(start, pool.window), self.spent, self.reserved)


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
        self._counters: dict[Slot, _Counter] = {}
        self._grants: dict[str, tuple[Grant, tuple[_Counter, ...]]] = {}  # open grants, with their pools' counters
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
                (await self._load((pool_id, start))).reserved += stored.amount
            self._orphans[stored.id] = stored
        await self.writer.commit()

    async def close(self) -> None:
        await self.writer.close()

    async def _load(self, slot: Slot) -> _Counter:
        counter = self._counters.get(slot)
        if counter is None:
            spent = await self.store.read_spend(*slot)
            counter = self._counters.setdefault(slot, _Counter(spent))
        return counter

    # -- admission ------------------------------------------------------------

    async def reserve(self, pools: Sequence[Pool], want: int, minimum: int, rate: RateCharge | None = None) -> Grant:
        if self.store.backlog_full():
            self.backlog_waits += 1
            if not await self.store.backlog_room(self.backlog_wait):
                self.backlog_refusals += 1
                raise LedgerBusy(BACKLOG_RETRY_AFTER)
        deadline: float | None = None
        counters = self._counters
        while True:
            now = self.clock()
            slots = [(pool, (pool.id, window_start(now, pool.window))) for pool in pools]
            held: list[_Counter] = []
            for _, slot in slots:
                counter = counters.get(slot)
                if counter is None:
                    await self._load(slot)
                else:
                    held.append(counter)
            if len(held) < len(slots):
                continue  # loaded: look again, with no await between the lookups and the grant
            # From here to the return or the wait: no await, so no other request interleaves.
            room = min(pool.limit - counter.spent - counter.reserved for (pool, _), counter in zip(slots, held))
            if room >= minimum:
                return self._grant(slots, held, min(want, room), now)
            for (pool, slot), counter in zip(slots, held):
                if pool.limit - counter.spent < minimum:
                    raise BudgetExhausted(pool, window_end(slot[1], pool.window))
            # Only other requests' reservations stand in the way: wait for one to settle.
            if deadline is None:
                deadline = time.monotonic() + self.admission_wait
            left = deadline - time.monotonic()
            binding = min(zip(slots, held), key=lambda sc: sc[0][0].limit - sc[1].spent - sc[1].reserved)[0]
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

    def _grant(self, slots: list[tuple[Pool, Slot]], held: list[_Counter], amount: int, now: float) -> Grant:
        for counter in held:
            counter.reserved += amount
        grant = Grant(
            id=f"{self._id_prefix}{next(self._ids)}",
            amount=amount,
            charges=tuple((pool, slot[1]) for pool, slot in slots),
            created_at=now,
            expires_at=now + self.ttl,
            states=tuple(counter.state(pool, slot[1]) for (pool, slot), counter in zip(slots, held)),
        )
        self._grants[grant.id] = (grant, tuple(held))
        self.writer.add_reservation(StoredReservation(
            grant.id, tuple(slot for _, slot in slots), amount, now, grant.expires_at,
        ))
        return grant

    # -- settlement -----------------------------------------------------------

    def _free(self, grant: Grant) -> tuple[_Counter, ...] | None:
        """Let go of what the grant holds; the counters it held, or None when it was settled already."""
        open_grant = self._grants.pop(grant.id, None)
        if open_grant is None:
            return None
        held, amount = open_grant[1], grant.amount
        for counter in held:
            counter.reserved -= amount
        self.writer.remove_reservation(grant.id)
        return held

    def _wake(self) -> None:
        """Let admissions waiting for room look again; free when none is waiting."""
        if self._waiting:
            self._settled.set()
            self._settled = asyncio.Event()

    async def settle(self, grant: Grant, cost: int, record: UsageRecord, rate: RateCharge | None = None) -> Settled:
        held = self._free(grant)
        if held is None:
            charged = 0  # already settled: never charge twice
            states = tuple(self._state(pool, start) for pool, start in grant.charges)
        else:
            charged = min(max(cost, 0), grant.amount)
            if charged:
                increments = []
                for (pool, start), counter in zip(grant.charges, held):
                    counter.spent += charged
                    increments.append(SpendIncrement(pool.id, start, charged))
                self.writer.add_increments(increments)
            states = tuple(counter.state(pool, start) for (pool, start), counter in zip(grant.charges, held))
        record.cost = charged
        self.writer.add_record(record)
        self._wake()
        # No other request holds a reservation: nobody would be served while we wait anyway.
        await self.writer.commit(alone=not self._grants)
        return Settled(charged, states)

    def _state(self, pool: Pool, start: int) -> PoolState:
        counter = self._counters.get((pool.id, start))
        return counter.state(pool, start) if counter is not None else _Counter(0).state(pool, start)

    async def release(self, grant: Grant) -> None:
        if self._free(grant) is not None:
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
                counter = self._counters.get((pool_id, start))
                if counter is not None:
                    counter.reserved -= orphan.amount
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
        cutoff = now - 2 * 86400
        stale = [slot for slot, counter in self._counters.items()
                 if slot[1] and slot[1] < cutoff and not counter.reserved]
        for slot in stale:
            del self._counters[slot]

    # -- reading --------------------------------------------------------------

    async def read(self, pool: Pool) -> PoolState:
        now = self.clock()
        start = window_start(now, pool.window)
        return (await self._load((pool.id, start))).state(pool, start)

    def open_reservations(self) -> int:
        return len(self._grants) + len(self._orphans)

    def write_stats(self) -> dict:
        return {
            **backlog_stats(self.store.backlog()),
            "backlog_waits": self.backlog_waits,
            "backlog_refusals": self.backlog_refusals,
            "reservations_open": self.open_reservations(),
        }
