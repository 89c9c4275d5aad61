"""The budget ledger interface: atomic reserve, settle, release, expire, read.

Callers (the request pipeline, the usage APIs) see only this protocol; the
embedded in-process ledger and a Redis one shared by many gateway instances
both fill it.

A shared ledger may also take a request's per-minute rate charge in the same atomic
step as its reservation (and the rate correction with its settlement): one round trip
instead of two, and one Redis script that sees both. It says so with `takes_rate`; the
admission then hands it the `RateCharge` instead of calling its own limiter. The
embedded ledger ignores the argument (the in-process limiter is a plain call already).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tollgate.domain.grants import Grant, Settled
from tollgate.domain.pools import Pool, PoolState
from tollgate.domain.usage import UsageRecord


@dataclass(frozen=True, slots=True)
class RateCharge:
    """A request's draw on its key's per-minute buckets (the semantics of ledger/ratelimit.py).

    At reserve: one request and `tokens` (the input bound) are taken only when the budget admits it
    too; a rate refusal holds no budget, a budget refusal takes no tokens. At settle: `tokens` is the
    correction (real usage minus what admission took), applied once with the settlement.
    """

    key_id: str
    rpm: int
    tpm: int
    tokens: int


class BudgetLedger(Protocol):
    # True: reserve and settle apply their `rate` argument themselves (raising RateLimited at reserve);
    # False: they ignore it and the caller runs its own rate limiter.
    takes_rate: bool

    async def start(self) -> None:
        """Load state left by an earlier run (orphaned reservations are held until they expire)."""

    async def close(self) -> None:
        """Make every settled amount durable."""

    async def reserve(self, pools: Sequence[Pool], want: int, minimum: int, rate: RateCharge | None = None) -> Grant:
        """Hold between `minimum` and `want` on every pool at once, as much as fits.

        Raises BudgetExhausted when some pool cannot fit `minimum` even after the
        requests now in flight settle. While the only obstacle is other requests'
        reservations, waits (bounded) for them to settle instead of refusing.
        Raises LedgerBusy when the ledger's writes are further behind than their bound
        and do not catch up within a short wait (nothing is held then).
        With `takes_rate`, raises RateLimited (nothing held, nothing taken) when `rate` does not fit.
        """

    async def settle(self, grant: Grant, cost: int, record: UsageRecord, rate: RateCharge | None = None) -> Settled:
        """Charge the real cost (never more than the grant), free the rest, store the record (and, with
        `takes_rate`, correct the token bucket by `rate.tokens`, once per grant).

        Returns once the charge and the record are durable.
        """

    async def release(self, grant: Grant) -> None:
        """Free a reservation without charging it (the request never reached an upstream)."""

    async def record(self, record: UsageRecord) -> None:
        """Store a usage record of a request that was never charged (refused, invalid); returns once it is durable."""

    async def expire(self) -> int:
        """Free reservations whose owner is gone and whose TTL has passed; returns how many."""

    async def read(self, pool: Pool) -> PoolState: ...

    def open_reservations(self) -> int:
        """Reservations held right now (in flight, or orphaned and not yet expired)."""

    def write_stats(self) -> dict:
        """The write path for the metrics: the backlog of writes not yet in the database and its bound,
        admissions that waited for it and were refused, reservations open."""
