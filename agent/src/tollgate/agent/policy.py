"""The knobs of the budgeted loop: caps, budget checks, and when to fall back to a cheaper model."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tollgate.agent.money import setting_nanos
from tollgate.agent.usage import BudgetStatus


@dataclass(frozen=True)
class Limits:
    """Caps that stop a runaway loop, and how often the budget is read."""

    max_steps: int = 30  # successful model calls over the session's life, resumes included
    max_consecutive_errors: int = 3  # transient errors and rate limits in a row
    usage_check_every: int = 5  # read GET /v1/usage every N steps (and at every start); 0 = never
    max_wait_seconds: float = 60.0  # a rate-limit wait longer than this parks instead of sleeping
    min_remaining_usd: Decimal | str | int = 0  # park before calling when remaining <= this
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    unknown_reset_seconds: float = 300.0  # reset to assume when no server source says

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.max_consecutive_errors < 1 or self.usage_check_every < 0:
            raise ValueError("max_steps and max_consecutive_errors must be >= 1, usage_check_every >= 0")
        setting_nanos(self.min_remaining_usd, "min_remaining_usd")

    @property
    def min_remaining_nanos(self) -> int:
        return setting_nanos(self.min_remaining_usd, "min_remaining_usd") or 0


@dataclass(frozen=True)
class Downgrade:
    """Switch to `model` while the remaining budget is below a threshold.

    Give `below_usd` (an absolute amount), `below_fraction` (of the window's limit), or both;
    either one being true is enough. After the window resets the primary model returns.
    """

    model: str
    below_usd: Decimal | str | int | None = None
    below_fraction: Decimal | str | None = None

    def __post_init__(self) -> None:
        if self.below_usd is None and self.below_fraction is None:
            raise ValueError("Downgrade needs below_usd or below_fraction")
        setting_nanos(self.below_usd, "below_usd")
        if self.below_fraction is not None:
            if isinstance(self.below_fraction, float):
                raise TypeError("below_fraction must be a Decimal or str, not a float")
            if not Decimal(0) <= Decimal(str(self.below_fraction)) <= Decimal(1):
                raise ValueError("below_fraction must be between 0 and 1")

    def applies(self, status: BudgetStatus | None, now: float) -> bool:
        """True when `status` is current and shows less left than the threshold."""
        if status is None or status.remaining_nanos is None or not status.is_current(now):
            return False
        remaining = status.remaining_nanos
        absolute = setting_nanos(self.below_usd, "below_usd")
        if absolute is not None and remaining < absolute:
            return True
        if self.below_fraction is not None and status.limit_nanos:
            return Decimal(remaining) < Decimal(str(self.below_fraction)) * status.limit_nanos
        return False
