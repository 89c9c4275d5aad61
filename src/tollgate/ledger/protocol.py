"""The budget ledger interface: atomic reserve, settle, release, expire, read.

Callers (the request pipeline, the usage APIs) see only this protocol; the
embedded in-process ledger and a Redis one shared by many gateway instances
both fill it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tollgate.domain.grants import Grant, Settled
from tollgate.domain.pools import Pool, PoolState
from tollgate.domain.usage import UsageRecord


class BudgetLedger(Protocol):
    async def start(self) -> None:
        """Load state left by an earlier run (orphaned reservations are held until they expire)."""

    async def close(self) -> None:
        """Make every settled amount durable."""

    async def reserve(self, pools: Sequence[Pool], want: int, minimum: int) -> Grant:
        """Hold between `minimum` and `want` on every pool at once, as much as fits.

        Raises BudgetExhausted when some pool cannot fit `minimum` even after the
        requests now in flight settle. While the only obstacle is other requests'
        reservations, waits (bounded) for them to settle instead of refusing.
        Raises LedgerBusy when the ledger's writes are further behind than their bound
        and do not catch up within a short wait (nothing is held then).
        """

    async def settle(self, grant: Grant, cost: int, record: UsageRecord) -> Settled:
        """Charge the real cost (never more than the grant), free the rest, store the record.

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
