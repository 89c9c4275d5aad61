"""Sending a request upstream: least-loaded deployment first, then the model's fallback chain.

A connect error, a timeout, a 5xx or an upstream 429 moves on to the next
deployment, then to the next model; any other answer (a 200, or a 4xx that
is the client's fault) is the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tollgate.gateway.models import ServedModel
from tollgate.upstream.base import Upstream, UpstreamError, UpstreamResponse

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


@dataclass(slots=True)
class Attempt:
    model: ServedModel
    upstream: Upstream
    response: UpstreamResponse
    fallbacks: int
    max_tokens: int | None


class RelayFailed(Exception):
    """Every deployment of every model in the chain failed."""

    def __init__(self, failures: list[str], timed_out: bool, upstream_429: bool) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
        self.timed_out = timed_out
        self.upstream_429 = upstream_429


# Builds the body for one model of the chain, with its own max_tokens, or None to skip it.
BodyBuilder = Callable[[ServedModel], tuple[bytes, int | None] | None]


async def send(chain: list[ServedModel], path: str, build: BodyBuilder, request_id: str | None = None) -> Attempt:
    """The first usable response along the chain. The caller must `done(attempt)` when finished."""
    failures: list[str] = []
    timed_out = upstream_429 = False
    tried = 0
    for model in chain:
        built = build(model)
        if built is None:
            failures.append(f"{model.id}: the reservation cannot pay for this model")
            continue
        body, max_tokens = built
        for upstream in model.pick():
            upstream.inflight += 1
            try:
                response = await upstream.send(path, body, request_id)
            except UpstreamError as exc:
                upstream.inflight -= 1
                timed_out = timed_out or exc.kind == "timeout"
                failures.append(f"{model.id} via {upstream.name}: {exc}")
                tried += 1
                continue
            except BaseException:
                upstream.inflight -= 1
                raise
            if response.status in RETRY_STATUSES:
                upstream.inflight -= 1
                upstream_429 = upstream_429 or response.status == 429
                failures.append(f"{model.id} via {upstream.name}: HTTP {response.status}")
                await response.aclose()
                tried += 1
                continue
            return Attempt(model, upstream, response, tried, max_tokens)
    raise RelayFailed(failures, timed_out, upstream_429)


def done(attempt: Attempt) -> None:
    attempt.upstream.inflight -= 1
