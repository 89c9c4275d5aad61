"""Which budget ledger and rate limiter a process runs: the embedded ones, or the shared ones in Redis.

`server.redis` unset: the ledger and the rate buckets live in this process (ledger/embedded.py,
ledger/ratelimit.py), and the store's `claim_ledger` keeps it the only ledger on the database. Set:
every worker and instance shares them in Redis (ledger/redis/), and a Redis that does not answer
refuses requests with a 503: there is no fallback to per-process counters, which would let a key
spend its budget once per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tollgate.config.schema import Config
from tollgate.ledger.embedded import EmbeddedLedger
from tollgate.ledger.protocol import BudgetLedger
from tollgate.ledger.ratelimit import RateLimiter
from tollgate.ledger.writer import LedgerWriter
from tollgate.proxy.admission import SharedLimiter
from tollgate.store.base import Store


@dataclass(frozen=True)
class LedgerParts:
    ledger: BudgetLedger
    # The in-process buckets, or Redis' (the same methods, async). The Redis ledger takes the rate charge
    # in its own scripts (`takes_rate`), so the admission never calls its limiter.
    limiter: RateLimiter | SharedLimiter
    writer: LedgerWriter


async def open_ledger(config: Config, store: Store, clock: Callable[[], float] = time.time) -> LedgerParts:
    """The configured ledger, started (holds left by an earlier run loaded, renewal running)."""
    if config.server.redis is not None:
        parts = _redis(config, store)
    else:
        writer = LedgerWriter(store)
        ledger = EmbeddedLedger(
            store, writer, reservation_ttl=config.server.reservation_ttl,
            admission_wait=config.server.admission_wait, backlog_wait=config.ledger.backlog_wait, clock=clock,
        )
        parts = LedgerParts(ledger, RateLimiter(), writer)
    await parts.ledger.start()
    return parts


def _redis(config: Config, store: Store) -> LedgerParts:
    from tollgate.ledger.redis import RedisSettings, open_redis_ledger

    r = config.redis
    settings = RedisSettings(
        hold_seconds=r.hold_seconds, renew_every=r.renew_every, admission_wait=config.server.admission_wait,
        timeout=r.socket_timeout, retry_after=r.retry_after, max_connections=r.pool_max, prefix=r.prefix,
        max_hold_seconds=config.server.reservation_ttl,
    )
    assert config.server.redis is not None
    ledger, limiter = open_redis_ledger(config.server.redis, store, settings)
    return LedgerParts(ledger, limiter, ledger.writer)
