"""Per-key rpm/tpm buckets in Redis, shared by instances, and the admission that awaits them."""

from __future__ import annotations

import asyncio

import pytest

from tests.scaled.redis_support import open_instance, open_store, record
from tollgate.config.schema import ModelConfig
from tollgate.domain.accounts import Account, ApiKey, KeyContext
from tollgate.domain.refusals import BudgetExhausted, RateLimited
from tollgate.ledger.embedded import EmbeddedLedger
from tollgate.ledger.redis import RedisRateLimiter
from tollgate.ledger.writer import LedgerWriter
from tollgate.proxy.admission import Admitter, KeyLimits
from tollgate.proxy.models import ServedModel


def test_the_buckets_are_shared_by_two_instances(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        (a_ledger, a), (b_ledger, b) = (await open_instance(redis_server.url, store),
                                        await open_instance(redis_server.url, store))
        for limiter in (a, b, a, b, a):  # five requests a minute, taken on either instance
            await limiter.admit("key_r", 5, 1_000_000, 10)
        with pytest.raises(RateLimited) as refused:
            await b.admit("key_r", 5, 1_000_000, 10)
        assert refused.value.limit == "rpm" and 0 < refused.value.retry_after <= 12.0
        await a.refund("key_r", 5, 1_000_000, 10)  # one given back: one more fits, anywhere
        await b.admit("key_r", 5, 1_000_000, 10)

        await a.admit("key_t", 100, 1_000, 600)
        with pytest.raises(RateLimited) as refused:
            await b.admit("key_t", 100, 1_000, 600)
        assert refused.value.limit == "tpm"
        await b.settle("key_t", 1_000, -500)  # the answer used fewer tokens than the bound took
        await b.admit("key_t", 100, 1_000, 600)
        await a.settle("key_t", 1_000, 5_000)  # a long answer: the bucket goes below zero
        with pytest.raises(RateLimited) as refused:
            await a.admit("key_t", 100, 1_000, 1)
        assert refused.value.retry_after > 60.0  # a deep deficit takes more than a minute to refill

        # A prompt larger than the whole bucket is admitted when the bucket is full (never refused forever).
        await a.admit("key_big", 100, 3_333, 50_000)
        with pytest.raises(RateLimited):
            await b.admit("key_big", 100, 3_333, 1)
        for ledger in (a_ledger, b_ledger):
            await ledger.close()
        await store.close()

    asyncio.run(main())


def _model() -> ServedModel:
    return ServedModel(ModelConfig("m", ("up",), "m", 1_000, 2_000, context=1000, max_output=50), [])


def test_admission_awaits_the_shared_limiter_and_refunds_when_the_budget_refuses(tmp_path, redis_server):
    """The standalone shared limiter beside a ledger that does not take the rate charge (the embedded one);
    the Redis ledger takes it in its own scripts instead (test_redis_rate_fold.py)."""
    async def main():
        store = await open_store(tmp_path)
        redis_ledger, limiter = await open_instance(redis_server.url, store, admission_wait=0.0)
        assert isinstance(limiter, RedisRateLimiter)
        ledger = EmbeddedLedger(store, LedgerWriter(store), reservation_ttl=60.0, admission_wait=0.0)
        await ledger.start()
        assert not ledger.takes_rate
        credits = _model().cost(100, 50)  # one request's worst case, no more
        ctx = KeyContext(ApiKey("k_adm", "acct_adm", "credit", "k", "p", 0),
                         Account("acct_adm", "A", 0, credits_granted=credits), None, None)
        admitter = Admitter(ledger, limiter, KeyLimits(rpm=3, tpm=1_000_000))
        first = await admitter.admit(ctx, _model(), 100, 50)
        assert first.grant.amount == _model().cost(100, 50)
        await ledger.settle(first.grant, credits, record("acct_adm"))
        # The budget is gone: refused by the ledger, and the rate bucket gets its request back.
        for _ in range(3):
            with pytest.raises(BudgetExhausted):
                await admitter.admit(ctx, _model(), 100, 50)
            for _ in range(50):  # the refund runs in the background: bounded wait for it
                if not admitter._background:
                    break
                await asyncio.sleep(0.02)
        # Three refusals refunded: the bucket (3 a minute) still lets a request through to the ledger.
        with pytest.raises(BudgetExhausted):
            await admitter.admit(ctx, _model(), 100, 50)
        admitter.settle_rate(first, 100, 40)
        for _ in range(50):
            if not admitter._background:
                break
            await asyncio.sleep(0.02)
        assert not admitter._background
        await ledger.close()
        await redis_ledger.close()
        await store.close()

    asyncio.run(main())

