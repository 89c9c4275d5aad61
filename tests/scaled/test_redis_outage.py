"""The failure policy against a real redis-server taken away and brought back.

Redis gone: admissions are refused with LedgerUnavailable (a 503, never a fallback to
per-process counters), promptly; settlements still make their records and charges
durable in the store at once, and their Redis side lands once Redis answers again,
exactly once. Redis emptied (FLUSHALL, or a restart without persistence): the spend
counters are rebuilt from the store, and nothing is counted twice.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests.scaled.redis_support import open_instance, open_store, pools, record, store_rows
from tests.support.services import RedisServer
from tollgate.domain.refusals import BudgetExhausted, LedgerUnavailable


async def until_retried(ledger, bound: int = 200) -> None:
    for _ in range(bound):
        if not len(ledger.retries):
            return
        await asyncio.sleep(0.05)


def test_with_redis_down_admission_is_refused_promptly_and_resumes_by_itself(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, limiter = await open_instance(redis_server.url, store, timeout=0.5, retry_after=2.0)
        (sub,) = pools("acct_o", 10_000)
        warm = await ledger.reserve((sub,), 100, 100)  # the pool has connections to lose
        await ledger.settle(warm, 100, record())
        redis_server.stop()
        with pytest.raises(LedgerUnavailable) as refused:
            await asyncio.wait_for(ledger.reserve((sub,), 100, 100), 10.0)  # a bound on a hang, not a timing
        assert refused.value.retry_after == 2.0
        with pytest.raises(LedgerUnavailable):
            await asyncio.wait_for(limiter.admit("k1", 60, 10_000, 10), 10.0)
        with pytest.raises(LedgerUnavailable):
            await asyncio.wait_for(ledger.read(sub), 10.0)
        assert ledger.open_reservations() == 0  # nothing held on the side
        redis_server.start()
        grant = await asyncio.wait_for(ledger.reserve((sub,), 100, 100), 10.0)
        await limiter.admit("k1", 60, 10_000, 10)
        # Redis came back empty (no persistence): the counter was rebuilt from the store.
        assert grant.states[0].spent == 100
        await ledger.settle(grant, 50, record())
        assert ledger.write_stats()["redis_unavailable_refusals"] == 1
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_a_settle_during_an_outage_is_durable_at_once_and_lands_in_redis_once_it_is_back(tmp_path):
    async def main():
        server = RedisServer(tmp_path / "aof", appendonly=True)  # the data survives the restart
        server.start()
        try:
            store = await open_store(tmp_path)
            ledger, _ = await open_instance(server.url, store, retry_every=0.05, hold_seconds=30.0)
            sub, key = pools("acct_p", 5_000, 3_000)
            charged = await ledger.reserve((sub, key), 1_000, 1_000)
            released = await ledger.reserve((sub, key), 1_000, 1_000)
            server.stop()
            settled = await asyncio.wait_for(ledger.settle(charged, 600, record()), 10.0)
            assert settled.charged == 600
            await asyncio.wait_for(ledger.release(released), 10.0)
            assert len(ledger.retries) == 2
            spend, count, total = store_rows(tmp_path)  # durable before settle returned
            assert sorted(spend.values()) == [600, 600] and (count, total) == (1, 600)
            server.start()
            await until_retried(ledger)
            assert len(ledger.retries) == 0
            for pool in (sub, key):
                state = await ledger.read(pool)
                assert (state.spent, state.reserved) == (600, 0)  # charged once, both holds freed
            # The retry was idempotent: a second forced settle of the same grant changes nothing.
            await ledger._apply_forced(charged, 600)
            assert (await ledger.read(sub)).spent == 600
            await ledger.close()
            await store.close()
        finally:
            server.kill()

    asyncio.run(main())


def test_a_settle_retried_into_an_emptied_redis_is_not_counted_twice(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store, retry_every=0.05)
        (sub,) = pools("acct_q", 5_000)
        grant = await ledger.reserve((sub,), 2_000, 2_000)
        redis_server.stop()  # no persistence: it comes back empty
        assert (await asyncio.wait_for(ledger.settle(grant, 1_500, record()), 10.0)).charged == 1_500
        redis_server.start()
        await until_retried(ledger)
        assert len(ledger.retries) == 0
        state = await ledger.read(sub)  # rebuilt from the store, which had the charge already
        assert (state.spent, state.reserved) == (1_500, 0)
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_counters_are_rebuilt_from_the_store_after_flushall(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        a, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
        b, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
        sub, key = pools("acct_r", 10_000, 4_000)
        for ledger, cost in ((a, 1_200), (b, 2_300)):
            grant = await ledger.reserve((sub, key), 3_000, 100)
            await ledger.settle(grant, cost, record())
        client = Redis.from_url(redis_server.url)
        await client.flushall()
        await client.aclose()
        # Both instances load at once; SET NX makes them agree, and the rebuilt counters are the store's.
        states = await asyncio.gather(a.read(sub), b.read(sub), a.read(key), b.read(key))
        assert [s.spent for s in states] == [3_500, 3_500, 3_500, 3_500]
        with pytest.raises(BudgetExhausted):
            await a.reserve((sub, key), 501, 501)  # the key's 4,000 has 500 left, as before the flush
        last = await b.reserve((sub, key), 10_000, 1)
        assert last.amount == 500
        await b.settle(last, 500, record())
        assert (await a.read(key)).spent == 4_000
        for ledger in (a, b):
            await ledger.close()
        await store.close()

    asyncio.run(main())


def test_a_redis_that_refuses_writes_is_an_outage_too(tmp_path, redis_server):
    """Out of memory (or a replica after a failover): it answers, but takes no hold and no charge."""
    async def main():
        store = await open_store(tmp_path)
        ledger, limiter = await open_instance(redis_server.url, store, retry_every=0.05)
        (sub,) = pools("acct_s", 1_000)
        grant = await ledger.reserve((sub,), 100, 100)
        admin = Redis.from_url(redis_server.url)
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", 1)
        with pytest.raises(LedgerUnavailable):
            await ledger.reserve((sub,), 100, 100)
        with pytest.raises(LedgerUnavailable):
            await limiter.admit("k_s", 60, 10_000, 10)
        assert (await ledger.settle(grant, 60, record())).charged == 60  # in the store at once
        assert len(ledger.retries) == 1
        await admin.config_set("maxmemory", 0)
        await until_retried(ledger)
        state = await ledger.read(sub)
        assert (state.spent, state.reserved, len(ledger.retries)) == (60, 0, 0)
        await admin.aclose()
        await ledger.close()
        await store.close()

    asyncio.run(main())
