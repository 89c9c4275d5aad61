"""What the ledger writes: settled spend, reservations, usage records, in one batch per commit."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.domain.usage import UsageRecord


@dataclass(frozen=True, slots=True)
class SpendIncrement:
    """Settled spend to add to one budget pool's counter for one window."""

    pool: str
    window_start: int
    amount: int


@dataclass(frozen=True, slots=True)
class StoredReservation:
    id: str
    pools: tuple[tuple[str, int], ...]
    amount: int
    created_at: float
    expires_at: float


@dataclass
class LedgerBatch:
    """Everything settled since the last write, committed in one transaction."""

    records: list[UsageRecord]
    increments: list[SpendIncrement]
    reservations_added: list[StoredReservation]
    reservations_removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.records or self.increments or self.reservations_added or self.reservations_removed)
