"""Per-route counters since start: requests, latency, cost and fallbacks, by profile, category and model.

Served as JSON at `/admin/metrics/routes` and to Prometheus by http/prometheus.py `RouteCollector`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RouteStats:
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    latency_ms: float = 0.0
    cost: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class RouteMetrics:
    def __init__(self) -> None:
        self.stats: dict[tuple[str, str, str], RouteStats] = {}
        self.classified: dict[tuple[str, str], int] = {}

    def classify(self, profile: str, category: str) -> None:
        key = (profile, category)
        self.classified[key] = self.classified.get(key, 0) + 1

    def observe(self, route: str, model: str, status: int, latency_ms: float, cost: int, input_tokens: int,
                output_tokens: int, fallbacks: int) -> None:
        """`route` is "<profile>:<category>"."""
        profile, _, category = route.partition(":")
        stats = self.stats.get((profile, category, model))
        if stats is None:
            stats = self.stats[(profile, category, model)] = RouteStats()
        stats.requests += 1
        stats.errors += status != 200
        stats.fallbacks += fallbacks
        stats.latency_ms += latency_ms
        stats.cost += cost
        stats.input_tokens += input_tokens
        stats.output_tokens += output_tokens

    def snapshot(self) -> list[dict]:
        rows = []
        for (profile, category, model), s in sorted(self.stats.items()):
            rows.append({
                "profile": profile, "category": category, "model": model, "requests": s.requests, "errors": s.errors,
                "fallbacks": s.fallbacks, "latency_ms_avg": round(s.latency_ms / s.requests, 3) if s.requests else 0.0,
                "cost_nanos": s.cost, "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
            })
        return rows
