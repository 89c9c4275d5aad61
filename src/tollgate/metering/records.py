"""The usage record: what one request cost, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class UsageRecord:
    request_id: str
    created_at: float
    account_id: str
    key_id: str
    subscription_id: str | None
    model: str
    upstream_model: str | None
    route: str | None
    endpoint: str
    status: int
    input_tokens: int
    output_tokens: int
    cost: int
    latency_ms: float
    estimated: bool
    stream: bool
    window_start: int | None = None
    key_window_start: int | None = None
    fallbacks: int = 0
    error: str | None = None
    session: str | None = None
    cached_prefix_tokens: int | None = None
    request_text: str | None = None
    client: str | None = None  # the caller's User-Agent, cut to 200 characters


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
