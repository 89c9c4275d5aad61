"""`GET /metrics` (operator token): the gateway's counters in Prometheus' text format (docs/metrics.md).

The request path only adds to plain counters (proxy/traffic.py, proxy/metrics.py, the caches and
the ledger's own); the collectors here read them when Prometheus scrapes, on the registry that
the composition root builds (serve/observability.py), and `prometheus_client` writes the text.
Nothing here runs per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from tollgate.accounts.auth import AdminAuth
from tollgate.http.cache_metrics import COUNTERS, CacheMetrics
from tollgate.http.request import Request, Router, Send, send_bytes
from tollgate.ledger.protocol import BudgetLedger
from tollgate.proxy.admission import Admitter
from tollgate.proxy.metrics import RouteMetrics
from tollgate.proxy.traffic import BUCKETS_MS, Histogram, Traffic
from tollgate.proxy.upstream.base import Upstream

_LE = [repr(ms / 1000.0) for ms in BUCKETS_MS] + ["+Inf"]


def _buckets(h: Histogram) -> list[tuple[str, int]]:
    return list(zip(_LE, h.cumulative()))


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


class TrafficCollector(Collector):
    """Requests, latency, time to first token, tokens, cost, refusals, upstreams, reservations and the ledger."""

    def __init__(self, traffic: Traffic, ledger: BudgetLedger, upstreams: dict[str, Upstream]) -> None:
        self.traffic = traffic
        self.ledger = ledger
        self.upstreams = upstreams

    def collect(self) -> Iterator[Metric]:
        yield from self._requests()
        yield from self._upstreams()
        yield from self._ledger()

    def _requests(self) -> Iterator[Metric]:
        t = self.traffic
        requests = CounterMetricFamily("tollgate_requests", "Data-plane requests the flow ran, by model, endpoint, "
                                       "route and the status the client got.",
                                       labels=["model", "endpoint", "route", "status"])
        durations: dict[tuple[str, str, str, str], Histogram] = {}
        firsts: dict[tuple[str, str, str], Histogram] = {}
        for (model, endpoint, route, status), s in sorted(t.series.items()):
            requests.add_metric([model, endpoint, route, str(status)], s.requests)
            key = (model, endpoint, route, _status_class(status))
            durations.setdefault(key, Histogram()).merge(s.latency)
            if s.ttft is not None:
                firsts.setdefault((model, endpoint, route), Histogram()).merge(s.ttft)
        duration = HistogramMetricFamily("tollgate_request_duration_seconds", "Time from a request's arrival to "
                                         "its settlement, by model, endpoint, route and status class.",
                                         labels=["model", "endpoint", "route", "status_class"])
        for labels, h in sorted(durations.items()):
            duration.add_metric(list(labels), _buckets(h), h.total / 1000.0)
        first = HistogramMetricFamily("tollgate_time_to_first_token_seconds", "Time from a streamed request's "
                                      "arrival to its first event relayed to the client, by model, endpoint and route.",
                                      labels=["model", "endpoint", "route"])
        for labels, h in sorted(firsts.items()):
            first.add_metric(list(labels), _buckets(h), h.total / 1000.0)
        yield from (requests, duration, first)
        tokens = CounterMetricFamily("tollgate_tokens", "Tokens billed, by model and direction (input, output).",
                                     labels=["model", "direction"])
        cost = CounterMetricFamily("tollgate_cost_nanodollars", "Spend charged, in nano-dollars (1e-9 USD), by model.",
                                   labels=["model"])
        fallbacks = CounterMetricFamily("tollgate_fallbacks", "Upstream tries that failed before the answer, "
                                        "by the model that answered.", labels=["model"])
        for model, s in sorted(t.by_model().items()):
            tokens.add_metric([model, "input"], s.input_tokens)
            tokens.add_metric([model, "output"], s.output_tokens)
            cost.add_metric([model], s.cost)
            fallbacks.add_metric([model], s.fallbacks)
        refusals = CounterMetricFamily("tollgate_refusals", "Requests the gateway refused, by reason (the error "
                                       "code; upstream_rejected: an upstream's own 4xx).", labels=["reason"])
        for reason, n in sorted(t.refusals.items()):
            refusals.add_metric([reason], n)
        yield from (tokens, cost, fallbacks, refusals)
        yield GaugeMetricFamily("tollgate_requests_in_flight", "Data-plane requests inside the flow now.",
                                value=t.in_flight)

    def _upstreams(self) -> Iterator[Metric]:
        stats = self.traffic.upstreams
        names = sorted(set(stats) | set(self.upstreams))
        requests = CounterMetricFamily("tollgate_upstream_requests", "Requests answered by each upstream.",
                                       labels=["upstream"])
        errors = CounterMetricFamily("tollgate_upstream_errors", "Failed tries, by upstream and kind (connect, "
                                     "timeout, protocol, closed, http_<status>, answer: broke off after answering).",
                                     labels=["upstream", "kind"])
        fallbacks = CounterMetricFamily("tollgate_upstream_fallbacks", "Requests that moved on from this upstream "
                                        "to the next deployment or model.", labels=["upstream"])
        healthy = GaugeMetricFamily("tollgate_upstream_healthy", "1 unless the upstream's last tries failed "
                                    "(3 in a row).", labels=["upstream"])
        streak = GaugeMetricFamily("tollgate_upstream_consecutive_errors", "Failed tries since its last answer.",
                                   labels=["upstream"])
        last_ok = GaugeMetricFamily("tollgate_upstream_last_success_timestamp_seconds", "When it last answered "
                                    "(Unix time).", labels=["upstream"])
        last_error = GaugeMetricFamily("tollgate_upstream_last_error_timestamp_seconds", "When a try on it last "
                                       "failed (Unix time).", labels=["upstream"])
        in_flight = GaugeMetricFamily("tollgate_upstream_in_flight", "Requests at the upstream now.",
                                      labels=["upstream"])
        duration = HistogramMetricFamily("tollgate_upstream_request_duration_seconds", "Duration of the requests "
                                         "each upstream answered (arrival to settlement).", labels=["upstream"])
        for name in names:
            s = stats.get(name)
            upstream = self.upstreams.get(name)
            in_flight.add_metric([name], upstream.inflight if upstream is not None else 0)
            if s is None:
                continue
            requests.add_metric([name], s.requests)
            for kind, n in sorted(s.errors.items()):
                errors.add_metric([name, kind], n)
            fallbacks.add_metric([name], s.fallbacks)
            healthy.add_metric([name], 1 if s.healthy else 0)
            streak.add_metric([name], s.consecutive_errors)
            if s.last_ok is not None:
                last_ok.add_metric([name], s.last_ok)
            if s.last_error_at is not None:
                last_error.add_metric([name], s.last_error_at)
            duration.add_metric([name], _buckets(s.latency), s.latency.total / 1000.0)
        yield from (requests, errors, fallbacks, healthy, streak, last_ok, last_error, in_flight, duration)

    def _ledger(self) -> Iterator[Metric]:
        stats = self.ledger.write_stats()
        yield GaugeMetricFamily("tollgate_reservations_open", "Budget reservations held now (requests in flight, "
                                "and orphans of a crash until they expire).", value=stats["reservations_open"])
        yield GaugeMetricFamily("tollgate_ledger_backlog_entries", "Journaled ledger batches not yet written to the "
                                "database (the write queue).", value=stats["backlog_entries"])
        yield GaugeMetricFamily("tollgate_ledger_backlog_bytes", "Bytes of those batches.",
                                value=stats["backlog_bytes"])
        yield GaugeMetricFamily("tollgate_ledger_backlog_age_seconds", "Age of the oldest of them.",
                                value=stats["backlog_age_seconds"])
        for field, unit in (("bytes", "bytes"), ("seconds", "seconds")):
            limit = stats.get(f"backlog_limit_{field}")
            if limit is not None:
                yield GaugeMetricFamily(f"tollgate_ledger_backlog_limit_{unit}", f"The backlog's bound in {unit} "
                                        "([ledger] backlog_*).", value=limit)
        yield CounterMetricFamily("tollgate_ledger_backlog_waits", "Admissions that found the backlog past its "
                                  "bound and waited.", value=stats["backlog_waits"])
        yield CounterMetricFamily("tollgate_ledger_backlog_refusals", "Admissions refused (503 ledger_busy) when "
                                  "it did not come back within the wait.", value=stats["backlog_refusals"])


class RouteCollector(Collector):
    """The `auto` router's per-route counters (proxy/metrics.py), under their names of old."""

    def __init__(self, metrics: RouteMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        labels = ["profile", "category", "model"]
        families = [
            ("requests", CounterMetricFamily("tollgate_route_requests", "Requests routed by model auto, by profile, "
                                             "category and model.", labels=labels)),
            ("errors", CounterMetricFamily("tollgate_route_errors", "Routed requests that did not end in a 200.",
                                           labels=labels)),
            ("fallbacks", CounterMetricFamily("tollgate_route_fallbacks", "Fallbacks of routed requests.",
                                              labels=labels)),
            ("cost", CounterMetricFamily("tollgate_route_cost_nanodollars", "Spend of routed requests (nano-dollars).",
                                         labels=labels)),
        ]
        latency = Metric("tollgate_route_latency_ms_sum", "Milliseconds of routed requests, summed.", "unknown")
        stats = sorted(self.metrics.stats.items())
        for (profile, category, model), s in stats:
            for attr, family in families:
                family.add_metric([profile, category, model], getattr(s, attr))
            latency.add_sample("tollgate_route_latency_ms_sum", {"profile": profile, "category": category,
                                                                 "model": model}, s.latency_ms)
        yield from (family for _, family in families)
        yield latency
        classified = CounterMetricFamily("tollgate_route_classified", "Requests classified by the auto router, by "
                                         "profile and category.", labels=["profile", "category"])
        for (profile, category), n in sorted(self.metrics.classified.items()):
            classified.add_metric([profile, category], n)
        yield classified


class CacheCollector(Collector):
    """The per-key caches of the request path (http/cache_metrics.py)."""

    def __init__(self, caches: CacheMetrics) -> None:
        self.caches = caches

    def collect(self) -> Iterator[Metric]:
        snapshot = self.caches.snapshot()
        for field in ("size", "capacity"):
            gauge = GaugeMetricFamily(f"tollgate_cache_{field}", f"Entries ({field}) of each per-key cache.",
                                      labels=["cache"])
            for cache, stats in snapshot.items():
                gauge.add_metric([cache], stats[field])
            yield gauge
        for field in COUNTERS:
            counter = CounterMetricFamily(f"tollgate_cache_{field}", f"Per-key cache {field.replace('_', ' ')}.",
                                          labels=["cache"])
            for cache, stats in snapshot.items():
                if field in stats:
                    counter.add_metric([cache], stats[field])
            yield counter


class KeyBudgets(Collector):
    """`[metrics] per_key`: each recently active key's remaining budget, limit and seconds to reset.

    The ledger is read (asynchronously) by `refresh` just before the registry is written; the
    tightest of a key's pools is the one reported (the one the budget headers report).
    """

    def __init__(self, admitter: Admitter, ledger: BudgetLedger, limit: int, clock: Callable[[], float]) -> None:
        self.admitter = admitter
        self.ledger = ledger
        self.limit = limit
        self.clock = clock
        self.rows: list[tuple[str, str, int, int, float | None]] = []

    async def refresh(self) -> None:
        rows = []
        now = self.clock()
        for key_id, pools in self.admitter.recent_pools(self.limit):
            states = [await self.ledger.read(pool) for pool in pools]
            tight = min(states, key=lambda s: s.remaining)
            reset = max(0.0, tight.resets_at - now) if tight.resets_at is not None else None
            rows.append((key_id, tight.pool.kind, tight.remaining, tight.pool.limit, reset))
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        remaining = GaugeMetricFamily("tollgate_key_budget_remaining_nanodollars", "What the key can still spend "
                                      "in its tightest budget (nano-dollars).", labels=["key_id", "pool"])
        limit = GaugeMetricFamily("tollgate_key_budget_limit_nanodollars", "That budget's limit (nano-dollars).",
                                  labels=["key_id", "pool"])
        reset = GaugeMetricFamily("tollgate_key_budget_reset_seconds", "Seconds until that budget's window resets "
                                  "(none for credits).", labels=["key_id", "pool"])
        for key_id, pool, left, cap, seconds in self.rows:
            remaining.add_metric([key_id, pool], left)
            limit.add_metric([key_id, pool], cap)
            if seconds is not None:
                reset.add_metric([key_id, pool], seconds)
        yield from (remaining, limit, reset)
        yield GaugeMetricFamily("tollgate_key_budget_keys", "Keys exported by the per-key gauges (at most "
                                "[metrics] per_key_max).", value=len(self.rows))


class PrometheusAPI:
    def __init__(self, auth: AdminAuth, registry: CollectorRegistry, keys: KeyBudgets | None = None) -> None:
        self.auth = auth
        self.registry = registry
        self.keys = keys

    def mount(self, router: Router) -> None:
        router.add("GET", "/metrics", self.metrics)

    async def metrics(self, request: Request, send: Send) -> None:
        await self.auth.check(request.bearer(), request.client_address)
        if self.keys is not None:
            await self.keys.refresh()
        body = generate_latest(self.registry)
        await send_bytes(send, 200, body, [(b"content-type", CONTENT_TYPE_LATEST.encode())])
