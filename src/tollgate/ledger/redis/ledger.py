"""The shared budget ledger: counters and holds in Redis, records and charges in the store.

Any number of gateway instances share one Redis. Reserve, settle (and release) are
each one Lua script over all the pools of the request (lua.py), so the hard cap holds
across instances exactly as the embedded ledger holds it within one process. The
holds carry deadlines on Redis's clock, renewed while their request runs (holds.py).

Where a charge becomes durable: the settle script decides what is charged (the
grant's cost, or less when its hold had lapsed, so that spend never passes a limit),
then the charge and the usage record go to the store's write path (`LedgerWriter`),
and settle returns once they are durable there. The Redis counter is fast state that
can be rebuilt from the store (scripts.py loads a missing counter with `read_spend`).

The key's per-minute buckets ride in the same scripts (`takes_rate`, buckets.py): reserve
takes one request and the input bound only together with the hold (a rate refusal holds
nothing, a budget refusal takes nothing; an admission that waits for room is checked
against the buckets again each time it looks), and settle applies the token correction
once per grant. A correction whose settle could not reach Redis is dropped (the buckets
refill within the minute), as the standalone limiter drops it.

The failure policy and its one documented bound: the package docstring (__init__.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from tollgate.domain.grants import Grant, Settled
from tollgate.domain.pools import Pool, PoolState
from tollgate.domain.refusals import BudgetExhausted, LedgerBusy, LedgerUnavailable, RateLimited
from tollgate.domain.usage import UsageRecord
from tollgate.domain.windows import window_start
from tollgate.ledger.batch import SpendIncrement
from tollgate.ledger.journal import backlog_stats
from tollgate.ledger.persistence import LedgerStore
from tollgate.ledger.protocol import RateCharge
from tollgate.ledger.redis.errors import UNREACHABLE
from tollgate.ledger.redis.holds import LiveHolds
from tollgate.ledger.redis.keys import tag
from tollgate.ledger.redis.pipeline import AutoPipeline
from tollgate.ledger.redis.retries import SettleRetries
from tollgate.ledger.redis.scripts import LedgerScripts
from tollgate.ledger.redis.settings import RedisSettings
from tollgate.ledger.redis.slots import Slot, guessed_states, slot_of, slots_now
from tollgate.ledger.redis.waiters import Waiters
from tollgate.ledger.writer import LedgerWriter

log = logging.getLogger("tollgate.ledger.redis")

# As the embedded ledger: a request refused because the store's writes are behind retries after this.
BACKLOG_RETRY_AFTER = 1.0
# Slots this process used recently, whose lapsed holds expire() frees (the least recent beyond are forgotten).
RECENT_SLOTS = 10_000
# How long close() gives settlements still waiting for Redis.
DRAIN_SECONDS = 2.0
# The reserve script's answers for a rate refusal, and the limit each names.
_RATE_REFUSALS = {b"rpm": "rpm", b"tpm": "tpm"}


class RedisLedger:
    takes_rate = True  # the key's rate buckets ride in the reserve and settle scripts (buckets.py)

    def __init__(self, client: Redis, store: LedgerStore, writer: LedgerWriter, settings: RedisSettings,
                 clock: Callable[[], float] = time.time, pipe: AutoPipeline | None = None) -> None:
        self.client = client
        self.store = store
        self.writer = writer
        self.settings = settings
        self.clock = clock
        self.prefix = settings.prefix
        self.scripts = LedgerScripts(client, store, settings, pipe)
        self.holds = LiveHolds(client, self.scripts.renew_script, self.scripts.hold_ms, settings.renew_every,
                               settings.max_hold_seconds)
        self.retries = SettleRetries(self._apply_forced, settings.retry_every)
        self.waiters = Waiters(settings.poll_every, max(settings.poll_every, 0.25))
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count()
        self._recent: dict[tuple[str, int], Slot] = {}
        self._next_sweep = 0.0
        self.unavailable = 0  # admissions refused because Redis did not answer
        self.backlog_waits = 0
        self.backlog_refusals = 0

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Join the database's shared ledger, start renewing holds. Nothing to load: the state lives in Redis,
        the counters load on demand."""
        await self.store.share_ledger()
        self.holds.start()

    async def close(self) -> None:
        await self.holds.stop()
        await self.scripts.pipe.drain()  # calls on their way land before the retries that may undo them
        await self.retries.drain(DRAIN_SECONDS)
        await self.scripts.pipe.close()
        await self.writer.close()
        await self.client.aclose()

    # -- admission ------------------------------------------------------------

    async def reserve(self, pools: Sequence[Pool], want: int, minimum: int, rate: RateCharge | None = None) -> Grant:
        if self.store.backlog_full():
            self.backlog_waits += 1
            if not await self.store.backlog_room(self.settings.admission_wait):
                self.backlog_refusals += 1
                raise LedgerBusy(BACKLOG_RETRY_AFTER)
        grant_id = f"{self._id_prefix}{next(self._ids)}"
        deadline: float | None = None
        poll: float | None = None
        while True:
            now = self.clock()
            slots = slots_now(self.prefix, pools, now)
            try:
                reply = await self.scripts.reserve(slots, grant_id, want, minimum, rate)
            except UNREACHABLE:
                self.unavailable += 1
                raise LedgerUnavailable(self.settings.retry_after) from None
            except asyncio.CancelledError:
                # The client left while the script was on its way: it may have taken a hold nobody will
                # settle. Free it now rather than leave it to lapse at its deadline.
                self.retries.add(Grant(grant_id, 0, tuple((s.pool, s.start) for s in slots), now, now), 0)
                raise
            if reply[0] == b"ok":
                return self._granted(grant_id, slots, reply, now)
            if rate is not None and reply[0] in _RATE_REFUSALS:
                limit = _RATE_REFUSALS[reply[0]]
                raise RateLimited(limit, rate.rpm if limit == "rpm" else rate.tpm, float(reply[1]))
            binding = slots[int(reply[1]) - 1]
            if reply[0] == b"full":
                raise BudgetExhausted(binding.pool, binding.end)
            # Only other requests' holds stand in the way: wait (bounded) for some to settle.
            if deadline is None:
                deadline = time.monotonic() + self.settings.admission_wait
            left = deadline - time.monotonic()
            if left <= 0:
                raise BudgetExhausted(binding.pool, binding.end)
            poll = self.waiters.next_poll(poll)
            until_reset = binding.end - now if binding.end is not None else left
            await self.waiters.wait(max(0.001, min(left, poll, until_reset)))

    def _granted(self, grant_id: str, slots: list[Slot], reply: list[bytes], now: float) -> Grant:
        grant = Grant(
            id=grant_id,
            amount=int(reply[1]),
            charges=tuple((slot.pool, slot.start) for slot in slots),
            created_at=now,
            expires_at=now + self.settings.hold_seconds,
            states=tuple(slot.state(int(reply[2 + 2 * i]), int(reply[3 + 2 * i])) for i, slot in enumerate(slots)),
        )
        self.holds.add(grant_id, tag(slots[0].pool), tuple(slot.keys[2] for slot in slots))
        recent = self._recent
        for slot in slots:
            key = (slot.pool.id, slot.start)
            if recent.pop(key, None) is None and len(recent) >= RECENT_SLOTS:
                del recent[next(iter(recent))]
            recent[key] = slot
        return grant

    # -- settlement -----------------------------------------------------------

    def _slots(self, grant: Grant) -> list[Slot]:
        return [slot_of(self.prefix, pool, start) for pool, start in grant.charges]

    async def _apply_forced(self, grant: Grant, charge: int) -> list[bytes]:
        return await self.scripts.settle(self._slots(grant), grant.id, charge, force=True)

    async def settle(self, grant: Grant, cost: int, record: UsageRecord, rate: RateCharge | None = None) -> Settled:
        # Shielded: a caller cancelled mid-way (its client left) must not stop a charge between Redis and
        # the store, or the counter would hold a charge the store never gets.
        return await asyncio.shield(self._settle(grant, cost, record, rate))

    async def _settle(self, grant: Grant, cost: int, record: UsageRecord, rate: RateCharge | None) -> Settled:
        charge = min(max(cost, 0), grant.amount)
        slots = self._slots(grant)
        charged = 0  # settled or released already: never twice
        states: tuple[PoolState, ...] | None = None  # None: guessed from the grant (Redis did not say)
        if self.holds.discard(grant.id):
            try:
                reply = await self.scripts.settle(slots, grant.id, charge, force=False, rate=rate)
            except Exception as error:
                # Redis did not answer (or failed): the charge goes to the store now, the Redis side later.
                if not isinstance(error, UNREACHABLE):
                    log.exception("settling in Redis failed; its charge goes to the store and is retried")
                self.retries.add(grant, charge)
                charged = charge
            else:
                if reply[0] == b"ok":  # else "dup": this very settlement ran already (a retried call)
                    charged = int(reply[1])
                    states = tuple(slot.state(int(reply[2 + 2 * i]), int(reply[3 + 2 * i]))
                                   for i, slot in enumerate(slots))
                self.waiters.wake()
        if charged:
            self.writer.add_increments([SpendIncrement(slot.pool.id, slot.start, charged) for slot in slots])
        record.cost = charged
        self.writer.add_record(record)
        await self.writer.commit(alone=not self.holds)
        return Settled(charged, states if states is not None else guessed_states(grant, slots, charged))

    async def release(self, grant: Grant) -> None:
        if not self.holds.discard(grant.id):
            return  # settled or released already
        try:
            await self._apply_forced(grant, 0)
        except Exception as error:
            if not isinstance(error, UNREACHABLE):
                log.exception("releasing in Redis failed; retried")
            self.retries.add(grant, 0)  # the hold also lapses at its deadline, unrenewed
        self.waiters.wake()

    async def record(self, record: UsageRecord) -> None:
        self.writer.add_record(record)
        await self.writer.commit(alone=not self.holds)

    async def expire(self) -> int:
        """Free lapsed holds in the pools this process used recently (a dead instance's holds are freed as
        well by the next reserve or read that touches their pools)."""
        now = time.monotonic()
        if now < self._next_sweep or not self._recent:
            return 0
        self._next_sweep = now + self.settings.sweep_every
        current = self.clock()
        recent = self._recent
        for key in [k for k, slot in recent.items() if slot.end is not None and slot.end < current - 3600]:
            del recent[key]  # an hour after its window: nothing of it is still renewed
        try:
            return await self.scripts.sweep(list(recent.values()))
        except UNREACHABLE:
            return 0

    # -- reading --------------------------------------------------------------

    async def read(self, pool: Pool) -> PoolState:
        slot = slot_of(self.prefix, pool, window_start(self.clock(), pool.window))
        try:
            spent, reserved = await self.scripts.read(slot)
        except UNREACHABLE:
            raise LedgerUnavailable(self.settings.retry_after) from None
        return slot.state(spent, reserved)

    def open_reservations(self) -> int:
        """This process's holds of requests in flight (each instance reports its own)."""
        return len(self.holds)

    def write_stats(self) -> dict:
        return {
            **backlog_stats(self.store.backlog()),
            "backlog_waits": self.backlog_waits,
            "backlog_refusals": self.backlog_refusals,
            "reservations_open": self.open_reservations(),
            "redis_unavailable_refusals": self.unavailable,
            "redis_settles_pending": len(self.retries),
            "redis_renewals_failed": self.holds.renewals_failed,
            "redis_counter_loads": self.scripts.loads,
        }
