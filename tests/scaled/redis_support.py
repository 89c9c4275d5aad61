"""Helpers of the Redis ledger tests: real stores, real Redis clients, and what to check in Redis itself."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from redis.asyncio import Redis

from tollgate.domain.pools import Pool
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.redis import RedisLedger, RedisRateLimiter, RedisSettings, open_redis_ledger
from tollgate.store.sqlite import SQLiteStore

HOUR = 3600
_requests = itertools.count()


async def open_store(folder: Path) -> SQLiteStore:
    """The real SQLite store; two opened on one file stand for two instances sharing one database."""
    store = SQLiteStore(f"sqlite:///{folder / 'ledger.db'}")
    await store.open()
    return store


async def open_instance(url: str, store: SQLiteStore, **settings) -> tuple[RedisLedger, RedisRateLimiter]:
    """One gateway instance's ledger and limiter (its own client), started."""
    ledger, limiter = open_redis_ledger(url, store, RedisSettings(**settings))
    await ledger.start()
    return ledger, limiter


def pools(account: str, sub_limit: int, key_limit: int | None = None, key: str = "k1") -> tuple[Pool, ...]:
    sub = Pool(f"sub:{account}", "subscription", sub_limit, HOUR, account)
    if key_limit is None:
        return (sub,)
    return sub, Pool(f"key:{key}", "key", key_limit, HOUR, account)


def record(account: str = "acct") -> UsageRecord:
    return UsageRecord(f"req_{next(_requests)}", 0.0, account, "k1", "s1", "m", None, None, "chat", 200, 1, 1, 0,
                       1.0, False, False)


def store_rows(folder: Path) -> tuple[dict[tuple[str, int], int], int, int]:
    """What the store holds: spend per (pool, window), and the usage records' count and cost sum."""
    conn = sqlite3.connect(folder / "ledger.db")
    try:
        spend = {(p, s): v for p, s, v in conn.execute("SELECT pool, window_start, spent FROM spend_totals")}
        # A record is in `usage_records`, or still in the inbox the store rolls up every few seconds (store/rollup.py).
        count, total = conn.execute("SELECT COUNT(*), COALESCE(SUM(cost), 0) FROM (SELECT cost FROM usage_records"
                                    " UNION ALL SELECT cost FROM usage_inbox)").fetchone()
    finally:
        conn.close()
    return spend, count, total


async def redis_ledger_state(url: str, prefix: str = "tg") -> tuple[dict[str, int], int, int]:
    """Straight from Redis: every spend counter by key, the sum of the reserved counters, the open holds."""
    client = Redis.from_url(url)
    try:
        spend = {k.decode(): int(await client.get(k)) async for k in client.scan_iter(f"{prefix}:*:s:*")}
        reserved = sum([int(await client.get(k)) async for k in client.scan_iter(f"{prefix}:*:r:*")])
        holds = sum([await client.zcard(k) async for k in client.scan_iter(f"{prefix}:*:z:*")])
    finally:
        await client.aclose()
    return spend, reserved, holds
