"""`GET /admin/metrics/traffic` (operator token): the counters of `/metrics` as JSON, for the dashboard.

`{"success": true, "data": {"refusals": {reason: n}, "upstreams": [{name, requests, errors, fallbacks,
p50Ms, p99Ms, healthy, lastError}], "models": [{model, requests, inputTokens, outputTokens, costNanos,
cost}], "reservationsOpen": n, "requestsInFlight": n}}`; counts since the gateway started, latency
quantiles interpolated inside the buckets of proxy/traffic.py (null before any request).
"""

from __future__ import annotations

from tollgate.accounts.auth import AdminAuth
from tollgate.domain.money import format_usd
from tollgate.http.request import Request, Router, Send, send_json
from tollgate.ledger.protocol import BudgetLedger
from tollgate.proxy.traffic import Traffic


def traffic_view(traffic: Traffic, ledger: BudgetLedger) -> dict:
    upstreams = []
    for name, s in sorted(traffic.upstreams.items()):
        upstreams.append({
            "name": name, "requests": s.requests, "errors": sum(s.errors.values()), "fallbacks": s.fallbacks,
            "p50Ms": s.latency.quantile(0.5), "p99Ms": s.latency.quantile(0.99), "healthy": s.healthy,
            "lastError": s.last_error,
        })
    models = [
        {"model": model, "requests": s.requests, "inputTokens": s.input_tokens, "outputTokens": s.output_tokens,
         "costNanos": s.cost, "cost": format_usd(s.cost)}
        for model, s in sorted(traffic.by_model().items())
    ]
    return {"refusals": dict(sorted(traffic.refusals.items())), "upstreams": upstreams, "models": models,
            "reservationsOpen": ledger.open_reservations(), "requestsInFlight": traffic.in_flight}


class TrafficMetricsAPI:
    def __init__(self, auth: AdminAuth, traffic: Traffic, ledger: BudgetLedger) -> None:
        self.auth = auth
        self.traffic = traffic
        self.ledger = ledger

    def mount(self, router: Router) -> None:
        router.add("GET", "/admin/metrics/traffic", self.traffic_metrics)

    async def traffic_metrics(self, request: Request, send: Send) -> None:
        await self.auth.check(request.bearer(), request.client_address)
        await send_json(send, 200, {"success": True, "data": traffic_view(self.traffic, self.ledger)})
