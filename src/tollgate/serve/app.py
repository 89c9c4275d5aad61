"""The ASGI app of a running gateway: services opened at start-up, routes mounted on them."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

from tollgate.accounts.auth import AdminAuth, ConsumptionAuth, ManagementAuth
from tollgate.config.schema import Config
from tollgate.costlab.live_api import overhead_report
from tollgate.http.admin import AdminAPI
from tollgate.http.cache_metrics import CacheMetrics
from tollgate.http.dashboard import Dashboard
from tollgate.http.anthropic import AnthropicAPI
from tollgate.http.app import App
from tollgate.http.cors import Cors
from tollgate.http.ledger_metrics import LedgerMetricsAPI
from tollgate.http.manage import ManagementAPI
from tollgate.http.openai import DataPlane, OpenAIAPI
from tollgate.http.request import Router
from tollgate.http.request_log import RequestLogAPI
from tollgate.http.responses import ResponsesAPI
from tollgate.http.style import Style
from tollgate.http.usage_series import UsageSeriesAPI
from tollgate.http.webhooks import WebhooksAPI
from tollgate.serve.observability import mount_observability
from tollgate.serve.services import Services, open_services
from tollgate.serve.setup import OperatorToken, operator_token, save_admin_hash

log = logging.getLogger("tollgate.serve")


def mount(router: Router, services: Services, admin: AdminAuth, worker: int | None = None) -> None:
    config, store = services.config, services.store
    max_body = config.server.max_body_bytes
    style = Style(old_names=config.server.legacy_field_names)
    auth = ConsumptionAuth(store, services.clock, capacity=config.server.key_cache)
    plane = DataPlane(auth, services.resolver, services.flow, max_body, config.server.store_request_text)
    OpenAIAPI(plane, services.registry, services.ledger, services.admitter, services.clock, store).mount(router)
    AnthropicAPI(plane).mount(router)
    ResponsesAPI(plane).mount(router)
    ManagementAPI(services.accounts, store, ManagementAuth(store), services.ledger, max_body, services.clock,
                  overhead=overhead_report(config.models), style=style).mount(router)
    if services.alerts is not None:
        WebhooksAPI(services.alerts, ManagementAuth(store), max_body, style).mount(router)
    series = UsageSeriesAPI(services.accounts, store, ManagementAuth(store), admin, services.ledger, services.clock,
                            late=config.server.reservation_ttl + config.ledger.backlog_seconds)
    caches = CacheMetrics(auth, services.admitter, series.series)
    AdminAPI(services.accounts, admin, services.ledger, max_body, services.clock,
             services.metrics, caches, style).mount(router)
    LedgerMetricsAPI(admin, services.ledger, style).mount(router)
    mount_observability(router, services, admin, caches, worker)  # /metrics, /admin/metrics/traffic, /openapi.json
    # The request log, usage over time and the dashboard that reads them (issue 15; docs/dashboard.md).
    RequestLogAPI(services.accounts, store, ManagementAuth(store), auth, admin).mount(router)
    series.mount(router)
    Dashboard().mount(router)


def settle_garbage_collector() -> None:
    """Move everything built at start-up out of the collector's way, and collect young objects less often.

    The request path allocates many short-lived objects and few cycles; a full
    young-generation pass every 700 allocations over the long-lived start-up
    objects is a visible share of a request's cost and of its tail latency.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def create_app(config: Config, announce: Callable[[Services, str | None], None] | None = None,
               clock: Callable[[], float] = time.time, token: OperatorToken | None = None,
               worker: int | None = None) -> App:
    """An app that opens everything on start-up and closes it (flushing the ledger) on shutdown.

    A worker of `--workers N` gets the operator `token` its supervisor prepared (with the store
    migrated and the plans written) and its `worker` slot, shown in /metrics (`tollgate_worker`).
    """
    router = Router()
    state: dict[str, Services] = {}

    async def startup() -> None:
        services = await open_services(config, clock, plans=token is None)
        state["services"] = services
        store = services.store
        known = token if token is not None else await operator_token(store, config.server.admin_token)
        admin = AdminAuth(known.stored, known=known.known, upgrade=lambda stored: save_admin_hash(store, stored))
        mount(router, services, admin, worker)
        app.traffic, app.access_log = services.traffic, services.access_log
        settle_garbage_collector()
        if announce is not None:
            announce(services, known.known if known.shown_once else None)

    async def shutdown() -> None:
        services = state.pop("services", None)
        if services is not None:
            await services.close()
            log.info("shut down cleanly: every usage record is written")

    cors = Cors(config.server.cors_origins) if config.server.cors_origins else None
    app = App(router, on_startup=[startup], on_shutdown=[shutdown], cors=cors)
    return app
