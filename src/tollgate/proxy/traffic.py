"""Every request's outcome as plain in-process counters: the source of `/metrics` and `/admin/metrics/traffic`.

The flow reports each request once, when it is over (`finished`, from its one observation point);
the relay reports each upstream try that failed and each fallback; the edge reports what it refused
before the flow (an invalid key, a malformed body). Updating costs a dict lookup and a few additions
per request: no locks, no label objects, no I/O. The exposition (http/prometheus.py) turns these
counters into metric families only when scraped.

Label sets stay bounded: models, upstreams and endpoints come from the config, routes are the
`auto` categories, statuses are HTTP statuses, and refusal reasons are the stable codes below.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Protocol

from tollgate.domain.refusals import (
    Conflict,
    LedgerBusy,
    NotFound,
    Refusal,
    UpstreamBroke,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tollgate.domain.usage import UsageRecord

# Latency buckets (milliseconds; exposed in seconds): a cached local answer to a long agent turn.
BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
              120000.0, 300000.0)
# The `route` label of a request that named its model (no `auto` routing).
DIRECT = "direct"
# An upstream is reported unhealthy after this many failed tries in a row (any success resets it).
UNHEALTHY_AFTER = 3
# Upstream statuses that are the upstream failing after it answered (`UPSTREAM_FAILED`, a timeout).
_UPSTREAM_FAULTS = frozenset({502, 504})


class RequestLog(Protocol):
    """Told of every request the flow finished (tollgate.proxy.access_log)."""

    def request(self, record: UsageRecord, upstream: str | None, reason: str | None) -> None: ...


def refusal_reason(refusal: Refusal) -> str:
    """A refusal's stable, bounded name: the code its API error carries (an upstream's own 4xx code,
    which any upstream may invent, is `upstream_rejected`)."""
    reason = getattr(refusal, "reason", None)
    if isinstance(reason, str):
        return reason  # budget_exceeded, insufficient_credits, rate_limit_exceeded, request_exceeds_budget, keys, models
    if isinstance(refusal, LedgerBusy):
        return "ledger_busy"
    if isinstance(refusal, UpstreamUnavailable):
        if refusal.timed_out:
            return "upstream_timeout"
        return "upstream_busy" if refusal.retry_after is not None else "upstream_unavailable"
    if isinstance(refusal, UpstreamBroke):
        return "upstream_timeout" if refusal.timed_out else "upstream_error"
    if isinstance(refusal, UpstreamRejected):
        return "upstream_rejected"
    if isinstance(refusal, NotFound):
        return "not_found"
    if isinstance(refusal, Conflict):
        return "conflict"
    return "invalid_request"  # an AccountError's Invalid, or any other refusal of a malformed request


class Histogram:
    """Counts per bucket of `BUCKETS_MS` (the last: above every bucket) and the sum, in milliseconds."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_MS) + 1)
        self.total = 0.0

    def add(self, ms: float) -> None:
        self.counts[bisect_left(BUCKETS_MS, ms)] += 1
        self.total += ms

    def merge(self, other: Histogram) -> None:
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.total += other.total

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out

    def quantile(self, q: float) -> float | None:
        """The `q` quantile (0..1), interpolated inside its bucket as Prometheus' `histogram_quantile` does;
        None without observations. Above the last bucket, the last bucket's bound."""
        total = self.count
        if not total:
            return None
        rank = q * total
        below = 0
        lower = 0.0
        for i, n in enumerate(self.counts):
            if i == len(BUCKETS_MS):
                return BUCKETS_MS[-1]
            upper = BUCKETS_MS[i]
            if n and below + n >= rank:
                return round(lower + (upper - lower) * (rank - below) / n, 3)
            below += n
            lower = upper
        return BUCKETS_MS[-1]


class Series:
    """One (model, endpoint, route, status): its requests, tokens, cost, fallbacks and latencies."""

    __slots__ = ("requests", "input_tokens", "output_tokens", "cost", "fallbacks", "latency", "ttft")

    def __init__(self) -> None:
        self.requests = self.input_tokens = self.output_tokens = self.cost = self.fallbacks = 0
        self.latency = Histogram()
        self.ttft: Histogram | None = None  # streamed answers that reported their first token


class UpstreamStats:
    """One upstream: requests it answered, tries that failed (by kind), fallbacks away from it, health."""

    __slots__ = ("requests", "errors", "fallbacks", "latency", "consecutive_errors", "last_ok", "last_error_at",
                 "last_error")

    def __init__(self) -> None:
        self.requests = self.fallbacks = self.consecutive_errors = 0
        self.errors: dict[str, int] = {}
        self.latency = Histogram()
        self.last_ok: float | None = None  # wall-clock seconds
        self.last_error_at: float | None = None
        self.last_error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.consecutive_errors < UNHEALTHY_AFTER

    def failed(self, kind: str, message: str, at: float) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.consecutive_errors += 1
        self.last_error_at = at
        self.last_error = f"{kind}: {message}"[:300]


class Traffic:
    """The counters. `clock` stamps upstream failures; `log` hears of every finished request."""

    def __init__(self, upstreams: Iterable[str] = (), clock: Callable[[], float] = time.time,
                 log: RequestLog | None = None) -> None:
        self.clock = clock
        self.log = log
        self.series: dict[tuple[str, str, str, int], Series] = {}
        self.refusals: dict[str, int] = {}
        self.upstreams: dict[str, UpstreamStats] = {name: UpstreamStats() for name in upstreams}
        self.in_flight = 0  # data-plane requests inside the flow right now (http/openai.py DataPlane.serve)

    def _upstream(self, name: str) -> UpstreamStats:
        stats = self.upstreams.get(name)
        if stats is None:
            stats = self.upstreams[name] = UpstreamStats()
        return stats

    # -- reported by the flow, the relay and the edge ----------------------------

    def finished(self, record: UsageRecord, upstream: str | None, reason: str | None) -> None:
        """A request is over (`record` settled or refused); `upstream`: the deployment whose answer it got;
        `reason`: the refusal's name when the gateway refused it."""
        key = (record.model, record.endpoint, record.route or DIRECT, record.status)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = Series()
        s.requests += 1
        s.input_tokens += record.input_tokens
        s.output_tokens += record.output_tokens
        s.cost += record.cost
        s.fallbacks += record.fallbacks
        latency = record.latency_ms
        s.latency.add(latency)
        ttft = record.ttft_ms
        if ttft is not None:
            if s.ttft is None:
                s.ttft = Histogram()
            s.ttft.add(ttft)
        if reason is not None:
            self.refusals[reason] = self.refusals.get(reason, 0) + 1
        if upstream is not None:
            u = self._upstream(upstream)
            u.requests += 1
            u.latency.add(latency)
            if record.status in _UPSTREAM_FAULTS:
                u.failed("answer", record.error or f"HTTP {record.status}", record.created_at + latency / 1000.0)
            elif record.status != 500:  # 500: the gateway's own failure, not the upstream's
                u.consecutive_errors = 0
                u.last_ok = record.created_at + latency / 1000.0
        if self.log is not None:
            self.log.request(record, upstream, reason)

    def refused(self, reason: str) -> None:
        """A request refused before the flow (at the edge): an invalid key, a malformed request, ..."""
        self.refusals[reason] = self.refusals.get(reason, 0) + 1

    def upstream_failed(self, upstream: str, kind: str, message: str) -> None:
        """One try on `upstream` failed before it answered: "connect", "timeout", "protocol", "closed", "http_<status>"."""
        self._upstream(upstream).failed(kind, message, self.clock())

    def fell_back(self, upstream: str) -> None:
        """A request moved on from `upstream` to the next deployment or model."""
        self._upstream(upstream).fallbacks += 1

    # -- read at scrape time -------------------------------------------------------

    def by_model(self) -> dict[str, Series]:
        """Every series of each model summed (latency included; time to first token left out)."""
        out: dict[str, Series] = {}
        for (model, _, _, _), s in self.series.items():
            total = out.get(model)
            if total is None:
                total = out[model] = Series()
            total.requests += s.requests
            total.input_tokens += s.input_tokens
            total.output_tokens += s.output_tokens
            total.cost += s.cost
            total.fallbacks += s.fallbacks
            total.latency.merge(s.latency)
        return out
