"""Every long-lived object of a running gateway, built once from the config and passed explicitly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tollgate.accounts.service import AccountService
from tollgate.alerts.service import Alerts
from tollgate.config.schema import Config
from tollgate.domain.windows import DAY
from tollgate.ledger.retention import Retention
from tollgate.ledger.protocol import BudgetLedger
from tollgate.ledger.ratelimit import RateLimiter
from tollgate.ledger.writer import LedgerWriter
from tollgate.proxy.access_log import AccessLog
from tollgate.proxy.admission import Admitter, KeyLimits, SharedLimiter
from tollgate.proxy.flow import Flow
from tollgate.proxy.metrics import RouteMetrics
from tollgate.proxy.models import ModelRegistry
from tollgate.proxy.resolve import AutoRouter, ModelResolver
from tollgate.proxy.traffic import Traffic
from tollgate.proxy.upstream.base import Upstream
from tollgate.proxy.upstream.factory import build_upstream
from tollgate.serve.ledgers import open_ledger
from tollgate.serve.setup import open_configured_store
from tollgate.store.base import Store

log = logging.getLogger("tollgate.serve")

CREDIT_KEY_LIMITS = KeyLimits(rpm=60, tpm=100_000)


@dataclass
class Services:
    config: Config
    store: Store
    writer: LedgerWriter
    ledger: BudgetLedger
    limiter: RateLimiter | SharedLimiter  # in process, or Redis' (serve/ledgers.py)
    accounts: AccountService
    upstreams: dict[str, Upstream]
    registry: ModelRegistry
    resolver: ModelResolver
    admitter: Admitter
    flow: Flow
    metrics: RouteMetrics
    clock: Callable[[], float] = time.time
    tasks: list[asyncio.Task] = field(default_factory=list)
    alerts: Alerts | None = None  # the account webhooks (`[alerts] enabled`)
    traffic: Traffic | None = None  # every request's outcome (/metrics, /admin/metrics/traffic)
    access_log: AccessLog | None = None  # one JSON line per request (`[logging] requests`)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.access_log is not None:
            self.access_log.close()
        if self.alerts is not None:
            await self.alerts.close()
        await self.ledger.close()
        for upstream in self.upstreams.values():
            await upstream.close()
        await self.store.close()


async def open_services(config: Config, clock: Callable[[], float] = time.time, plans: bool = True) -> Services:
    """Everything a gateway process serves with; `plans=False` when `prepare` already wrote the config's plans."""
    store = await open_configured_store(config, plans)
    parts = await open_ledger(config, store, clock)
    ledger, limiter, writer = parts.ledger, parts.limiter, parts.writer
    upstreams = {u.name: build_upstream(u) for u in config.upstreams}
    for upstream in upstreams.values():
        await upstream.start()
    registry = ModelRegistry.build(config, upstreams)
    metrics = RouteMetrics()
    router: AutoRouter | None = build_auto_router(config, registry, ledger, metrics)
    admitter = Admitter(ledger, limiter, CREDIT_KEY_LIMITS, capacity=config.server.key_cache)
    alerts = Alerts(store, ledger, config.alerts, clock) if config.alerts.enabled else None
    access_log = AccessLog.open(config.logging.requests)
    traffic = Traffic(upstreams, clock, access_log)
    services = Services(
        config=config, store=store, writer=writer, ledger=ledger, limiter=limiter,
        accounts=AccountService(store, clock), upstreams=upstreams, registry=registry,
        resolver=ModelResolver(registry, router), admitter=admitter,
        flow=Flow(admitter, ledger, clock, metrics, watch=alerts, traffic=traffic), metrics=metrics, clock=clock,
        alerts=alerts, traffic=traffic, access_log=access_log,
    )
    if alerts is not None:
        await alerts.start()
    services.tasks.append(asyncio.get_running_loop().create_task(_expire_forever(ledger)))
    if access_log is not None:
        services.tasks.append(asyncio.get_running_loop().create_task(access_log.run_forever()))
    keep = config.ledger.usage_retention_days * DAY
    if keep:
        retention = Retention(store, keep, config.ledger.prune_batch, config.ledger.prune_every, clock)
        services.tasks.append(asyncio.get_running_loop().create_task(retention.run_forever()))
    return services


def build_auto_router(config: Config, registry: ModelRegistry, ledger: BudgetLedger,
                      metrics: RouteMetrics) -> AutoRouter | None:
    """The `auto` router, when the config has route tables (see tollgate.routing)."""
    if not config.routes:
        return None
    from tollgate.proxy.routing.router import build_router

    return build_router(config, registry, ledger, metrics)


async def _expire_forever(ledger: BudgetLedger) -> None:
    while True:
        await asyncio.sleep(1.0)
        try:
            await ledger.expire()
        except Exception:
            log.exception("expiring reservations failed")
