"""A request's slots in Redis: for each pool, the window it charges and that window's four keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tollgate.domain.grants import Grant
from tollgate.domain.pools import Pool, PoolState
from tollgate.domain.windows import window_end, window_start
from tollgate.ledger.redis.keys import SlotKeys, slot_keys


@dataclass(frozen=True, slots=True)
class Slot:
    pool: Pool
    start: int
    keys: SlotKeys

    @property
    def end(self) -> int | None:
        return window_end(self.start, self.pool.window)

    def expiry_ms(self, keep_after: int) -> int:
        """When this window's keys may go (unix ms); 0 for credits, whose one counter never resets."""
        end = self.end
        return 0 if end is None else (end + keep_after) * 1000

    def state(self, spent: int, reserved: int) -> PoolState:
        return PoolState(self.pool, self.start, self.end, spent, reserved)


def slot_of(prefix: str, pool: Pool, start: int) -> Slot:
    return Slot(pool, start, slot_keys(prefix, pool, start))


def slots_now(prefix: str, pools: Sequence[Pool], now: float) -> list[Slot]:
    """The slots a request admitted at `now` draws from (windows by this instance's clock, as
    everywhere in the gateway; only hold deadlines need one clock for all instances)."""
    return [slot_of(prefix, pool, window_start(now, pool.window)) for pool in pools]


def flat_keys(slots: Sequence[Slot]) -> list[str]:
    return [key for slot in slots for key in slot.keys]


def guessed_states(grant: Grant, slots: Sequence[Slot], charged: int) -> tuple[PoolState, ...]:
    """The pools' states when Redis cannot say: those at admission, with this grant settled."""
    if len(grant.states) != len(slots):
        return tuple(slot.state(charged, 0) for slot in slots)
    return tuple(slot.state(s.spent + charged, max(0, s.reserved - grant.amount))
                 for slot, s in zip(slots, grant.states))
