"""The shared budget ledger and rate buckets on Redis: the scaled configuration (SPEC section 6).

`open_redis_ledger(url, store, settings)` builds both on one client (hiredis parser,
short timeouts, one quick retry of a dropped connection); the ledger owns the client
and closes it. The gateway's admission uses the ledger alone: it takes the key's rate
buckets in its own reserve and settle scripts (one round trip each; ledger.py), and the
standalone limiter is left for a ledger that does not (ratelimit.py). The hot calls go
through pipeline.py, which packs EVALSHA itself on a connection of its own. See ledger.py for the guarantees, lua.py for the scripts and the
arithmetic, keys.py for the key layout (Redis Cluster ready: one hash tag per account).

Redis must keep every key it is given: `maxmemory-policy noeviction` (evicting a hold would
free budget that a request in flight may still spend). A Redis out of memory then refuses
writes, which the ledger treats as an outage (errors.py), never as room.

Failure policy: a reserve Redis does not answer within the client timeout is refused
with LedgerUnavailable (a 503 with a short Retry-After), never admitted on
per-process counters. A settlement during an outage still writes its record and its
charge (the grant's cost) to the store at once; the Redis side waits in `retries` and
lands, idempotent by grant id, when Redis answers again. One bound is documented
rather than enforced: if the outage outlasts the hold deadline on a Redis that kept
its data, another instance may be admitted into the lapsed hold's room before the
retried charge lands, and the window can then end above its limit by at most that charge.

Bounds that follow from the design: a hold left by a dead or stalled instance is freed
within `hold_seconds` of its last renewal, by the next script that touches its pool
(reserve, read, or this process's expire()); a settle whose hold had already lapsed
charges at most what still fits beside the open holds, so it never pushes a window past
its limit; if Redis loses its data (restart without persistence, FLUSHALL), every counter
is rebuilt from the store's settled spend, and a charge the store already has is never
added twice. A rebuild sees what the store's `read_spend` sees: a charge settled in Redis
but not yet durable in the store (the moment between the script and the write, or a
journal another instance has not yet applied) is missing from a counter rebuilt just then.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tollgate.ledger.persistence import LedgerStore
from tollgate.ledger.redis.ledger import RedisLedger
from tollgate.ledger.redis.pipeline import AutoPipeline
from tollgate.ledger.redis.ratelimit import RedisRateLimiter
from tollgate.ledger.redis.settings import RedisSettings
from tollgate.ledger.writer import LedgerWriter

# A request waits at most this many client timeouts for a free connection of the pool.
POOL_WAIT_FACTOR = 4

__all__ = ["RedisLedger", "RedisRateLimiter", "RedisSettings", "open_redis_client", "open_redis_ledger"]


def open_redis_client(url: str, settings: RedisSettings) -> Redis:
    """A client that gives up fast: a command waits at most `timeout` for Redis, and a connection found
    dropped (Redis restarted) is retried once at once; beyond that the caller refuses (LedgerUnavailable).

    Its pool blocks a request while all `max_connections` are busy (a plain pool would fail it at once,
    turning a burst into 503s), for at most POOL_WAIT_FACTOR timeouts.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.max_connections,
        timeout=settings.timeout * POOL_WAIT_FACTOR,
        socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout,
        retry=Retry(NoBackoff(), 1),
        retry_on_timeout=False,
        health_check_interval=0,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


def open_redis_ledger(url: str, store: LedgerStore,
                      settings: RedisSettings | None = None) -> tuple[RedisLedger, RedisRateLimiter]:
    """The ledger and the rate limiter of one gateway process, on one client. No I/O here: call
    `await ledger.start()` before serving and `await ledger.close()` after (it closes the client)."""
    settings = settings or RedisSettings()
    client = open_redis_client(url, settings)
    pipe = AutoPipeline(client)  # one for both: a request's bucket and budget calls share pipelines
    ledger = RedisLedger(client, store, LedgerWriter(store), settings, pipe=pipe)
    return ledger, RedisRateLimiter(client, settings.prefix, settings.retry_after, pipe)
