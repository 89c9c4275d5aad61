"""The ledger's calls to Redis: each one server-side script, registered once and called by its SHA.

A script that finds a spend counter missing (a new window, or a Redis that lost its
data) answers `load`: the counter is read from the store, where every settled charge
is durable, set in Redis only if still missing (SET NX, so instances loading at once
agree), and the script runs again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from redis.asyncio import Redis

from tollgate.domain.refusals import LedgerUnavailable
from tollgate.ledger.persistence import LedgerStore
from tollgate.ledger.protocol import RateCharge
from tollgate.ledger.redis import lua
from tollgate.ledger.redis.keys import bucket_key, settled_key, tag
from tollgate.ledger.redis.pipeline import AutoPipeline
from tollgate.ledger.redis.settings import RedisSettings
from tollgate.ledger.redis.slots import Slot, flat_keys

log = logging.getLogger("tollgate.ledger.redis")

Reply = list[bytes]


class LedgerScripts:
    def __init__(self, client: Redis, store: LedgerStore, settings: RedisSettings,
                 pipe: AutoPipeline | None = None) -> None:
        self.client = client
        self.pipe = pipe or AutoPipeline(client)
        self.store = store
        self.settings = settings
        self.hold_ms = int(settings.hold_seconds * 1000)
        self.settled_ms = int(settings.settled_ttl * 1000)
        self.reserve_script = client.register_script(lua.RESERVE)
        self.settle_script = client.register_script(lua.SETTLE)
        self.renew_script = client.register_script(lua.RENEW)
        self.sweep_script = client.register_script(lua.SWEEP)
        self.read_script = client.register_script(lua.READ)
        self.load_script = client.register_script(lua.LOAD)
        self.loads = 0  # counters read from the store into Redis

    async def load(self, slot: Slot) -> None:
        """Set a missing spend counter from the store (only if still missing)."""
        try:
            spent = await self.store.read_spend(slot.pool.id, slot.start)
        except Exception as error:
            # Without the settled spend there is no knowing what is left: refuse, as for Redis itself.
            log.warning("cannot read spend of %s from the store (%s)", slot.pool.id, type(error).__name__)
            raise LedgerUnavailable(self.settings.retry_after) from error
        self.loads += 1
        await self.pipe.call(self.load_script, slot.keys[:2], [spent, slot.expiry_ms(self.settings.keep_after_window)])

    async def _loading(self, slots: Sequence[Slot], script, keys: list[str], args: list) -> Reply:
        # Each `load` answer sets one missing counter; a script needs at most one per slot.
        for _ in range(len(slots) + 2):
            reply = await self.pipe.call(script, keys, args)
            if reply[0] != b"load":
                return reply
            await self.load(slots[int(reply[1]) - 1] if len(reply) > 1 else slots[0])
        raise LedgerUnavailable(self.settings.retry_after)  # counters vanishing as fast as they are set

    async def reserve(self, slots: Sequence[Slot], grant_id: str, want: int, minimum: int,
                      rate: RateCharge | None = None) -> Reply:
        """{ok, amount, spent, reserved per pool} | {full, i} | {wait, i} (i counts from 1) | {rpm|tpm, wait}."""
        args: list = [grant_id, want, minimum, self.hold_ms]
        keep = self.settings.keep_after_window
        for slot in slots:
            args.append(slot.pool.limit)
            args.append(slot.expiry_ms(keep))
        keys = flat_keys(slots)
        if rate is not None:
            keys.append(bucket_key(self.settings.prefix, slots[0].pool, rate.key_id))
            args += (rate.rpm, rate.tpm, rate.tokens)
        return await self._loading(slots, self.reserve_script, keys, args)

    async def settle(self, slots: Sequence[Slot], grant_id: str, charge: int, force: bool,
                     rate: RateCharge | None = None) -> Reply:
        """{ok, charged, spent, reserved per pool} | {dup, charged}; `rate` corrects the token bucket once."""
        keys = flat_keys(slots)
        keys.append(settled_key(self.settings.prefix, slots[0].pool, grant_id))
        args: list = [grant_id, charge, "1" if force else "0", self.settled_ms]
        args.extend(slot.pool.limit for slot in slots)
        if rate is not None:
            keys.append(bucket_key(self.settings.prefix, slots[0].pool, rate.key_id))
            args += (rate.rpm, rate.tpm, rate.tokens)
        if force:
            return await self.pipe.call(self.settle_script, keys, args)
        return await self._loading(slots, self.settle_script, keys, args)

    async def read(self, slot: Slot) -> tuple[int, int]:
        """(spent, reserved) of one slot, its expired holds freed first."""
        reply = await self._loading([slot], self.read_script, list(slot.keys), [])
        return int(reply[0]), int(reply[1])

    async def sweep(self, slots: Sequence[Slot]) -> int:
        """Free the expired holds of these slots: one script per account, in one pipeline."""
        by_tag: dict[str, list[str]] = defaultdict(list)
        for slot in slots:
            by_tag[tag(slot.pool)].extend(slot.keys[1:])
        if not by_tag:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for keys in by_tag.values():
            await self.sweep_script(keys=keys, client=pipe)
        return sum(int(n) for n in await pipe.execute())
