"""Sending a request upstream: least-loaded deployment first, then the model's fallback chain.

A connect error, a timeout, a 5xx or an upstream 429 moves on to the next
deployment, then to the next model; any other answer (a 200, or a 4xx that
is the client's fault) is the answer. When none answers, the shortest wait that a rate-limited
or overloaded upstream asked for (proxy/retry_hint.py) goes with the refusal, for the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tollgate.domain.refusals import UpstreamUnavailable
from tollgate.proxy.models import ServedModel
from tollgate.proxy.retry_hint import retry_after
from tollgate.proxy.upstream.base import Upstream, UpstreamError, UpstreamResponse

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


@dataclass(slots=True)
class Attempt:
    model: ServedModel
    upstream: Upstream
    response: UpstreamResponse
    fallbacks: int


# Builds the body for one model of the chain, or None when the reservation cannot pay for it.
BodyBuilder = Callable[[ServedModel], bytes | None]


class RelayObserver(Protocol):
    """Told of each try that failed and each move to the next deployment (tollgate.proxy.traffic)."""

    def upstream_failed(self, upstream: str, kind: str, message: str) -> None: ...
    def fell_back(self, upstream: str) -> None: ...


async def send(chain: list[ServedModel], path: str, build: BodyBuilder, request_id: str | None = None,
               client_headers: Mapping[str, str] | None = None, observer: RelayObserver | None = None) -> Attempt:
    """The first usable response along the chain. The caller must `done(attempt)` when finished.

    Raises UpstreamUnavailable when every deployment of every model failed.
    """
    failures: list[str] = []
    failed: list[str] = []  # the upstream of each failed try, in order (for the observer)
    timed_out = False
    wait: float | None = None  # the shortest wait a rate-limited or overloaded upstream asked for
    tried = 0
    for model in chain:
        body = build(model)
        if body is None:
            failures.append(f"{model.id}: the reservation cannot pay for this model")
            continue
        for upstream in model.pick():
            upstream.inflight += 1
            try:
                response = await upstream.send(path, body, request_id, client_headers)
            except UpstreamError as exc:
                upstream.inflight -= 1
                timed_out = timed_out or exc.kind == "timeout"
                failures.append(f"{model.id} via {upstream.name}: {exc}")
                tried += 1
                if observer is not None:
                    observer.upstream_failed(upstream.name, exc.kind, str(exc))
                    failed.append(upstream.name)
                continue
            except BaseException:
                upstream.inflight -= 1
                raise
            if response.status in RETRY_STATUSES:
                upstream.inflight -= 1
                failures.append(f"{model.id} via {upstream.name}: HTTP {response.status}")
                if response.status in (429, 503, 529):
                    hint = retry_after(response.headers)
                    if hint is not None and (wait is None or hint < wait):
                        wait = hint
                await response.aclose()
                tried += 1
                if observer is not None:
                    observer.upstream_failed(upstream.name, f"http_{response.status}", f"HTTP {response.status}")
                    failed.append(upstream.name)
                continue
            if failed and observer is not None:
                _fell_back(observer, failed)
            return Attempt(model, upstream, response, tried)
    if failed and observer is not None:
        _fell_back(observer, failed[:-1])  # the last try had nowhere to go
    raise UpstreamUnavailable(failures, timed_out, wait)


def _fell_back(observer: RelayObserver, upstreams: list[str]) -> None:
    for name in upstreams:
        observer.fell_back(name)


def done(attempt: Attempt) -> None:
    attempt.upstream.inflight -= 1
