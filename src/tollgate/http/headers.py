"""Headers on every answer: who answered (request id, model, route), the tightest budget, and the cost."""

from __future__ import annotations

import os
import uuid

from tollgate.domain.durations import format_duration
from tollgate.domain.grants import Settled
from tollgate.domain.money import format_usd
from tollgate.domain.pools import PoolState
from tollgate.domain.timestamps import iso
from tollgate.proxy.exchange import Exchange

# The request id of a data-plane request, set in its ASGI scope once the flow has it (the flow then
# counts and logs the request; an error answered by the app carries the same id).
REQUEST_ID = "tollgate.request_id"


def new_request_id() -> str:
    """A random UUID: the one request-id form every upstream accepts (some validate it as a UUID)."""
    return str(uuid.UUID(bytes=os.urandom(16), version=4))


def request_id_header(ex: Exchange) -> tuple[bytes, bytes]:
    return (b"x-request-id", ex.call.request_id.encode())


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


def _answer_headers(ex: Exchange) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-request-id", ex.call.request_id.encode()), (b"x-tollgate-model", ex.model.id.encode())]
    if ex.call.route is not None:
        headers.append((b"x-tollgate-route", ex.call.route.encode()))
    if ex.fallbacks:
        headers.append((b"x-tollgate-fallbacks", str(ex.fallbacks).encode()))
    return headers


def reply_headers(ex: Exchange, settled: Settled) -> list[tuple[bytes, bytes]]:
    """After settlement: `remaining` counts only other requests still in flight."""
    return _answer_headers(ex) + _pool_headers(_tightest(settled.states)) + [
        (b"x-request-cost", format_usd(settled.charged).encode()),
        (b"x-request-cost-nanos", str(settled.charged).encode()),
    ]


def stream_headers(ex: Exchange) -> list[tuple[bytes, bytes]]:
    """Before a stream: its cost is not known yet, only the most it can cost (its reservation).

    The exact cost arrives in the final usage chunk (`usage.cost`), since HTTP
    headers are sent before the body.
    """
    grant = ex.grant
    return _answer_headers(ex) + _pool_headers(_tightest(grant.states)) + [
        (b"x-request-cost-max", format_usd(grant.amount).encode()),
    ]
