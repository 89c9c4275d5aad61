"""The rate buckets folded into the Redis ledger's scripts: one call takes the bucket and the hold together.

Against a real Redis: a rate refusal holds no budget, a budget refusal takes no rate tokens, the
buckets are shared by instances, and a settlement's token correction lands once per grant.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests.scaled.redis_support import HOUR, open_instance, open_store, pools, record, redis_ledger_state
from tollgate.config.schema import ModelConfig
from tollgate.domain.accounts import Account, ApiKey, KeyContext
from tollgate.domain.pools import Pool
from tollgate.domain.refusals import BudgetExhausted, RateLimited
from tollgate.ledger.protocol import RateCharge
from tollgate.ledger.ratelimit import RateLimiter
from tollgate.ledger.redis.keys import bucket_key
from tollgate.ledger.redis.slots import slots_now
from tollgate.proxy.admission import Admitter, KeyLimits
from tollgate.proxy.models import ServedModel


def _model() -> ServedModel:
    return ServedModel(ModelConfig("m", ("up",), "m", 1_000, 2_000, context=1000, max_output=50), [])


def _ctx(account: str, key: str, credits: int) -> KeyContext:
    return KeyContext(ApiKey(key, account, "credit", "k", "p", 0), Account(account, "A", 0, credits_granted=credits),
                      None, None)


async def _tokens_left(url: str, pool: Pool, key_id: str) -> tuple[float, float]:
    """The request and token levels in the key's bucket hash, as Redis holds them (not refilled)."""
    client = Redis.from_url(url)
    try:
        r, t = await client.hmget(bucket_key("tg", pool, key_id), "r", "t")
    finally:
        await client.aclose()
    return float(r), float(t)


def test_a_rate_refusal_holds_no_budget_and_a_budget_refusal_takes_no_tokens(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
        assert ledger.takes_rate
        worst = _model().cost(100, 50)
        ctx = _ctx("acct_f", "k_f", 10 * worst)
        admitter = Admitter(ledger, RateLimiter(), KeyLimits(rpm=2, tpm=1_000_000))
        held = [await admitter.admit(ctx, _model(), 100, 50) for _ in range(2)]
        with pytest.raises(RateLimited) as refused:
            await admitter.admit(ctx, _model(), 100, 50)
        assert refused.value.limit == "rpm" and 0 < refused.value.retry_after <= 30.0
        _, reserved, holds = await redis_ledger_state(redis_server.url)
        assert (reserved, holds) == (2 * worst, 2)  # the refused request holds nothing
        for admission in held:
            await ledger.settle(admission.grant, worst, record("acct_f"))

        # A key whose budget is gone: every refusal is the budget's, never the rate's (3 a minute, 6 tries).
        poor = _ctx("acct_p", "k_p", worst)
        admitter = Admitter(ledger, RateLimiter(), KeyLimits(rpm=3, tpm=1_000_000))
        first = await admitter.admit(poor, _model(), 100, 50)
        await ledger.settle(first.grant, worst, record("acct_p"))
        before = await _tokens_left(redis_server.url, first.pools[0], "k_p")
        for _ in range(6):
            with pytest.raises(BudgetExhausted):
                await admitter.admit(poor, _model(), 100, 50)
        assert await _tokens_left(redis_server.url, first.pools[0], "k_p") == before  # nothing taken
        assert (await redis_ledger_state(redis_server.url))[1:] == (0, 0)
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_two_instances_share_the_buckets_and_a_correction_lands_once(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        (a_ledger, _), (b_ledger, _) = (await open_instance(redis_server.url, store),
                                        await open_instance(redis_server.url, store))
        ctx = _ctx("acct_s", "k_s", 10**15)
        a = Admitter(a_ledger, RateLimiter(), KeyLimits(rpm=3, tpm=1_000))
        b = Admitter(b_ledger, RateLimiter(), KeyLimits(rpm=3, tpm=1_000))
        first = await a.admit(ctx, _model(), 600, 10)
        with pytest.raises(RateLimited) as refused:  # 400 tokens left for everyone: 600 do not fit on b
            await b.admit(ctx, _model(), 600, 10)
        assert refused.value.limit == "tpm"
        # The answer used 100 of the 600 taken: settled on a, the 500 are back for b at once.
        correction = a.settle_rate(first, 90, 10)
        assert correction == RateCharge("k_s", 3, 1_000, -500)
        await a_ledger.settle(first.grant, 1, record("acct_s"), correction)
        second = await b.admit(ctx, _model(), 600, 10)
        await b_ledger.settle(second.grant, 1, record("acct_s"), b.settle_rate(second, 600, 0))  # nothing to correct
        await b.admit(ctx, _model(), 1, 1)  # the third request of the minute, on b
        with pytest.raises(RateLimited) as refused:
            await a.admit(ctx, _model(), 1, 1)
        assert refused.value.limit == "rpm"

        # The settle script run twice for one grant (a call retried after its answer was lost) corrects once.
        pool = Pool("sub:acct_once", "subscription", 10**12, HOUR, "acct_once")
        grant = await a_ledger.reserve((pool,), 1_000, 1, RateCharge("k_once", 10, 10_000, 100))
        slots = slots_now("tg", (pool,), grant.created_at)
        extra = RateCharge("k_once", 10, 10_000, 5_000)
        assert (await a_ledger.scripts.settle(slots, grant.id, 10, False, extra))[0] == b"ok"
        assert (await b_ledger.scripts.settle(slots, grant.id, 10, False, extra))[0] == b"dup"
        _, tokens = await _tokens_left(redis_server.url, pool, "k_once")
        assert 10_000 - 5_100 <= tokens < 10_000 - 5_000  # taken 100, corrected by 5,000 once (plus refill)
        for ledger in (a_ledger, b_ledger):
            await ledger.close()
        await store.close()

    asyncio.run(main())


def test_a_prompt_larger_than_the_bucket_is_admitted_when_it_is_full_then_waits_for_the_refill(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store)
        budget = pools("acct_big", 10**12)
        grant = await ledger.reserve(budget, 1_000, 1, RateCharge("k_big", 100, 3_333, 50_000))
        with pytest.raises(RateLimited) as refused:
            await ledger.reserve(budget, 1_000, 1, RateCharge("k_big", 100, 3_333, 1))
        assert refused.value.limit == "tpm" and refused.value.retry_after > 60.0  # a deep deficit
        await ledger.settle(grant, 1_000, record("acct_big"))
        assert (await redis_ledger_state(redis_server.url))[1:] == (0, 0)
        await ledger.close()
        await store.close()

    asyncio.run(main())
