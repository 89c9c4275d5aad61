"""What the operator watches, mounted with the rest: `/metrics`, `/admin/metrics/traffic`, `/openapi.json`.

The Prometheus registry is built here, once per app, with this gateway's collectors on it (no
global default registry): the process's own metrics (`process_*`, `python_*`) and the gateway's
(docs/metrics.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from tollgate.accounts.auth import AdminAuth
from tollgate.http.cache_metrics import CacheMetrics
from tollgate.http.openapi import OpenAPIDocument
from tollgate.http.prometheus import CacheCollector, KeyBudgets, PrometheusAPI, RouteCollector, TrafficCollector
from tollgate.http.request import Router
from tollgate.http.traffic_metrics import TrafficMetricsAPI
from tollgate.proxy.traffic import Traffic
from tollgate.serve.services import Services


class WorkerInfo(Collector):
    """`tollgate_worker{worker, pid} 1`: which process of `--workers N` answered this scrape.

    The workers share one port, so each scrape reads one worker's counters (docs/deploy.md#metrics).
    """

    def __init__(self, worker: int) -> None:
        self.labels = [str(worker), str(os.getpid())]

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("tollgate_worker", "The worker process (of --workers N) that answered this scrape.",
                                 labels=["worker", "pid"])
        info.add_metric(self.labels, 1)
        yield info


def metrics_registry(services: Services, traffic: Traffic, caches: CacheMetrics,
                     worker: int | None = None) -> tuple[CollectorRegistry, KeyBudgets | None]:
    registry = CollectorRegistry()
    if worker is not None:
        registry.register(WorkerInfo(worker))
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


def mount_observability(router: Router, services: Services, admin: AdminAuth, caches: CacheMetrics,
                        worker: int | None = None) -> None:
    traffic = services.traffic if services.traffic is not None else Traffic(services.upstreams, services.clock)
    registry, keys = metrics_registry(services, traffic, caches, worker)
    PrometheusAPI(admin, registry, keys).mount(router)
    TrafficMetricsAPI(admin, traffic, services.ledger).mount(router)
    OpenAPIDocument().mount(router)
