"""What the operator watches, mounted with the rest: `/metrics`, `/admin/metrics/traffic`, `/openapi.json`.

The Prometheus registry is built here, once per app, with this gateway's collectors on it (no
global default registry): the process's own metrics (`process_*`, `python_*`) and the gateway's
(docs/metrics.md).
"""

from __future__ import annotations

from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from tollgate.accounts.auth import AdminAuth
from tollgate.http.cache_metrics import CacheMetrics
from tollgate.http.openapi import OpenAPIDocument
from tollgate.http.prometheus import CacheCollector, KeyBudgets, PrometheusAPI, RouteCollector, TrafficCollector
from tollgate.http.request import Router
from tollgate.http.traffic_metrics import TrafficMetricsAPI
from tollgate.proxy.traffic import Traffic
from tollgate.serve.services import Services


def metrics_registry(services: Services, traffic: Traffic, caches: CacheMetrics) -> tuple[CollectorRegistry,
                                                                                         KeyBudgets | None]:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(TrafficCollector(traffic, services.ledger, services.upstreams))
    registry.register(RouteCollector(services.metrics))
    registry.register(CacheCollector(caches))
    keys = None
    if services.config.metrics.per_key:
        keys = KeyBudgets(services.admitter, services.ledger, services.config.metrics.per_key_max, services.clock)
        registry.register(keys)
    return registry, keys


def mount_observability(router: Router, services: Services, admin: AdminAuth, caches: CacheMetrics) -> None:
    traffic = services.traffic if services.traffic is not None else Traffic(services.upstreams, services.clock)
    registry, keys = metrics_registry(services, traffic, caches)
    PrometheusAPI(admin, registry, keys).mount(router)
    TrafficMetricsAPI(admin, traffic, services.ledger).mount(router)
    OpenAPIDocument().mount(router)
