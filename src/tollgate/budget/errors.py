"""Refusals for budget, credits and rate, carrying what the 429 contract needs."""

from __future__ import annotations

from tollgate.budget.pools import Pool


class BudgetExhausted(Exception):
    """Not even a minimal answer fits in `pool` before `resets_at`."""

    def __init__(self, pool: Pool, resets_at: int | None) -> None:
        super().__init__(f"budget {pool.id} exhausted")
        self.pool = pool
        self.resets_at = resets_at


class RateLimited(Exception):
    """A per-minute limit (`rpm` or `tpm`) is reached; `retry_after` seconds until it has room."""

    def __init__(self, limit: str, value: int, retry_after: float) -> None:
        super().__init__(f"{limit} limit of {value} reached")
        self.limit = limit
        self.value = value
        self.retry_after = retry_after
