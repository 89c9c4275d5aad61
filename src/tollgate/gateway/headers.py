"""Budget headers on every answer: the tightest budget's limit, what is left, when it resets, and the cost."""

from __future__ import annotations

from tollgate.budget.ledger import Settled
from tollgate.budget.pools import PoolState
from tollgate.budget.windows import iso
from tollgate.config.durations import format_duration
from tollgate.gateway.admission import Admission
from tollgate.money import format_usd


def _tightest(states: tuple[PoolState, ...]) -> PoolState | None:
    return min(states, key=lambda s: s.remaining) if states else None


def _pool_headers(state: PoolState | None) -> list[tuple[bytes, bytes]]:
    if state is None:
        return []
    headers = [
        (b"x-budget-limit", format_usd(state.pool.limit).encode()),
        (b"x-budget-remaining", format_usd(state.remaining).encode()),
    ]
    if state.resets_at is not None:
        headers.append((b"x-budget-reset", iso(state.resets_at).encode()))
    if state.pool.window:
        headers.append((b"x-budget-window", format_duration(state.pool.window).encode()))
    return headers


def budget_headers(settled: Settled, admission: Admission) -> list[tuple[bytes, bytes]]:
    """After settlement: `remaining` counts only other requests still in flight."""
    return _pool_headers(_tightest(settled.states)) + [
        (b"x-request-cost", format_usd(settled.charged).encode()),
        (b"x-request-cost-nanos", str(settled.charged).encode()),
    ]


def stream_headers(admission: Admission) -> list[tuple[bytes, bytes]]:
    """Before a stream: its cost is not known yet, only the most it can cost (its reservation).

    The exact cost arrives in the final usage chunk (`usage.cost`), since HTTP
    headers are sent before the body.
    """
    grant = admission.grant
    return _pool_headers(_tightest(grant.states)) + [
        (b"x-request-cost-max", format_usd(grant.amount).encode()),
    ]
