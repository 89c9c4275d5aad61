"""The Redis ledger's contract against a real redis-server: the embedded ledger's semantics, shared by instances.

Each test runs one or two RedisLedger instances (each its own client, as two processes
would have) on the test's own Redis, with the real SQLite store as the durable path.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests.scaled.redis_support import open_instance, open_store, pools, record, redis_ledger_state, store_rows
from tollgate.domain.pools import Pool
from tollgate.domain.refusals import BudgetExhausted
from tollgate.domain.windows import window_end
from tollgate.ledger.redis.slots import slot_of, slots_now


def test_reserve_takes_what_fits_on_every_pool_and_settle_charges_once(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store)
        sub, key = pools("acct_a", 1_000, 600)
        grant = await ledger.reserve((sub, key), 700, 100)
        assert grant.amount == 600  # the key's own budget binds
        assert [s.reserved for s in grant.states] == [600, 600]
        settled = await ledger.settle(grant, 800, record())
        assert settled.charged == 600  # never more than the grant
        assert [(s.spent, s.reserved) for s in settled.states] == [(600, 0), (600, 0)]
        again = await ledger.settle(grant, 800, record())
        assert again.charged == 0  # settling twice charges nothing
        # The same settlement run again in Redis (a call retried after its answer was lost): its marker stops it.
        slots = [slot_of(ledger.prefix, pool, start) for pool, start in grant.charges]
        assert (await ledger.scripts.settle(slots, grant.id, 600, force=False))[0] == b"dup"
        state = await ledger.read(sub)
        assert (state.spent, state.reserved, state.remaining) == (600, 0, 400)
        assert ledger.open_reservations() == 0
        await ledger.close()
        spend, count, total = store_rows(tmp_path)
        assert spend == {(sub.id, grant.charges[0][1]): 600, (key.id, grant.charges[1][1]): 600}
        assert (count, total) == (2, 600)
        await store.close()

    asyncio.run(main())


def test_a_pool_without_room_for_the_minimum_refuses_with_its_window_end(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store, admission_wait=5.0)
        (sub,) = pools("acct_b", 1_000)
        grant = await ledger.reserve((sub,), 900, 900)
        await ledger.settle(grant, 900, record())
        with pytest.raises(BudgetExhausted) as refused:  # no hold in the way: refused at once, no wait
            await asyncio.wait_for(ledger.reserve((sub,), 500, 101), 4.0)
        start = grant.charges[0][1]
        assert refused.value.pool == sub and refused.value.resets_at == window_end(start, sub.window)
        small = await ledger.reserve((sub,), 500, 100)
        assert small.amount == 100  # exactly what is left
        await ledger.release(small)
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_a_reserve_waits_for_another_instances_hold_then_takes_what_it_left(tmp_path, redis_server):
    async def main():
        store_a, store_b = await open_store(tmp_path), await open_store(tmp_path)
        a, _ = await open_instance(redis_server.url, store_a)
        b, _ = await open_instance(redis_server.url, store_b, admission_wait=30.0, poll_every=0.02)
        (sub,) = pools("acct_c", 1_000)
        held = await a.reserve((sub,), 1_000, 1_000)
        waiting = asyncio.create_task(b.reserve((sub,), 1_000, 500))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # only a hold stands in the way: it waits instead of refusing
        await a.settle(held, 300, record())
        grant = await asyncio.wait_for(waiting, 20.0)
        assert grant.amount == 700
        await b.settle(grant, 700, record())
        assert (await a.read(sub)).spent == 1_000
        # With no settlement to come, the wait is bounded and ends in the budget refusal.
        c, _ = await open_instance(redis_server.url, store_b, admission_wait=0.2)
        with pytest.raises(BudgetExhausted):
            await asyncio.wait_for(c.reserve((sub,), 10, 1), 10.0)
        for ledger in (a, b, c):
            await ledger.close()
        await store_a.close()
        await store_b.close()

    asyncio.run(main())


def test_a_hold_nobody_renews_frees_itself_and_its_late_settle_charges_only_what_fits(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        dead, _ = await open_instance(redis_server.url, store, hold_seconds=2.0, renew_every=0.2)
        live, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
        (sub,) = pools("acct_d", 1_000)
        stalled = await dead.reserve((sub,), 1_000, 1_000)
        await dead.holds.stop()  # the instance stops renewing (killed or stalled) without settling
        with pytest.raises(BudgetExhausted):
            await live.reserve((sub,), 100, 100)  # still held
        for _ in range(100):  # bounded: the hold lapses after about two seconds
            if (await live.read(sub)).reserved == 0:
                break
            await asyncio.sleep(0.1)
        assert (await live.read(sub)).reserved == 0
        taken = await live.reserve((sub,), 700, 700)
        # The stalled instance comes back and settles: at most what still fits beside the new hold.
        late = await dead.settle(stalled, 500, record())
        assert late.charged == 300
        await live.settle(taken, 700, record())
        state = await live.read(sub)
        assert (state.spent, state.reserved) == (1_000, 0)  # never past the limit
        for ledger in (dead, live):
            await ledger.close()
        spend, count, total = store_rows(tmp_path)
        assert list(spend.values()) == [1_000] and total == 1_000
        await store.close()

    asyncio.run(main())


def test_renewal_keeps_a_long_requests_hold_past_many_deadlines(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        streaming, _ = await open_instance(redis_server.url, store, hold_seconds=1.5, renew_every=0.2)
        other, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
        (sub,) = pools("acct_e", 1_000)
        grant = await streaming.reserve((sub,), 1_000, 1_000)
        for _ in range(8):  # over two deadlines' worth; every read frees lapsed holds, so a lapse would show
            await asyncio.sleep(0.5)
            assert (await other.read(sub)).reserved == 1_000
        with pytest.raises(BudgetExhausted):
            await other.reserve((sub,), 1, 1)
        settled = await streaming.settle(grant, 400, record())
        assert settled.charged == 400
        assert (await other.read(sub)).reserved == 0
        for ledger in (streaming, other):
            await ledger.close()
        await store.close()

    asyncio.run(main())


def test_release_frees_the_hold_and_a_settle_after_it_charges_nothing(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store)
        sub, key = pools("acct_f", 5_000, 2_000)
        grant = await ledger.reserve((sub, key), 2_000, 10)
        await ledger.release(grant)
        await ledger.release(grant)  # twice: nothing more happens
        assert (await ledger.settle(grant, 1_500, record())).charged == 0
        assert [(await ledger.read(p)).remaining for p in (sub, key)] == [5_000, 2_000]
        await ledger.close()
        spend, reserved, holds = await redis_ledger_state(redis_server.url)
        assert (set(spend.values()), reserved, holds) == ({0}, 0, 0)
        await store.close()

    asyncio.run(main())


def test_money_beyond_two_to_the_53_is_exact_to_the_nano(tmp_path, redis_server):
    """Lua numbers are doubles: past 2**53 they round. The scripts' limb arithmetic must not."""
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
        limit = 2**62 + 12_345  # about $4.6 billion: far past a double's exact integers
        (sub,) = pools("acct_g", limit)
        grant = await ledger.reserve((sub,), 2**62 + 1, 2**62 + 1)
        assert grant.amount == 2**62 + 1
        assert (await ledger.settle(grant, 2**62 - 1, record())).charged == 2**62 - 1
        state = await ledger.read(sub)
        assert (state.spent, state.remaining) == (2**62 - 1, 12_346)
        with pytest.raises(BudgetExhausted):
            await ledger.reserve((sub,), 12_347, 12_347)  # one nano-dollar too many
        last = await ledger.reserve((sub,), 10**18, 12_346)
        assert last.amount == 12_346
        await ledger.settle(last, 10**18, record())
        assert (await ledger.read(sub)).spent == limit
        await ledger.close()
        spend, _, _ = store_rows(tmp_path)
        assert list(spend.values()) == [limit]
        await store.close()

    asyncio.run(main())


def test_a_reserve_run_twice_holds_once_and_concurrent_calls_share_pipelines(tmp_path, redis_server):
    """The client retries a call whose answer a dropped connection lost: the script must not hold twice."""
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store)
        (sub,) = pools("acct_h", 1_000)
        slots = slots_now(ledger.prefix, (sub,), ledger.clock())
        first = await ledger.scripts.reserve(slots, "g-twice", 400, 1)
        again = await ledger.scripts.reserve(slots, "g-twice", 400, 1)
        assert first[:2] == again[:2] == [b"ok", b"400"]
        assert (await ledger.read(sub)).reserved == 400
        await ledger.scripts.settle(slots, "g-twice", 0, force=True)
        assert (await ledger.read(sub)).reserved == 0
        # Requests reserving in the same turn of the event loop go to Redis in shared pipelines.
        batches = ledger.scripts.pipe.batches
        grants = await asyncio.gather(*[ledger.reserve((sub,), 10, 10) for _ in range(50)])
        assert ledger.scripts.pipe.batches - batches < 50
        for grant in grants:
            await ledger.release(grant)
        assert (await ledger.read(sub)).reserved == 0
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_expire_frees_lapsed_holds_in_the_pools_this_instance_used_and_counts_them(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        dead, _ = await open_instance(redis_server.url, store, hold_seconds=0.5, renew_every=0.1)
        live, _ = await open_instance(redis_server.url, store, sweep_every=0.05)
        sub, key = pools("acct_x", 1_000, 800)
        await live.release(await live.reserve((sub, key), 100, 100))  # the pools are recent for `live`
        await dead.reserve((sub, key), 300, 300)
        await dead.reserve((sub,), 200, 200)
        await dead.holds.stop()
        freed = 0
        for _ in range(100):  # bounded: the holds lapse after half a second
            freed += await live.expire()
            if freed >= 3:
                break
            await asyncio.sleep(0.05)
        assert freed == 3  # one hold in two pools counts twice, one in one pool once
        assert [(await live.read(p)).reserved for p in (sub, key)] == [0, 0]
        for ledger in (dead, live):
            await ledger.close()
        await store.close()

    asyncio.run(main())


def test_credits_have_no_window_and_a_top_up_is_room_at_once(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
        credits = Pool("credit:acct_y", "credits", 1_000, None, "acct_y")
        grant = await ledger.reserve((credits,), 1_000, 1_000)
        assert grant.charges[0][1] == 0 and grant.states[0].resets_at is None
        await ledger.settle(grant, 1_000, record())
        with pytest.raises(BudgetExhausted) as refused:
            await ledger.reserve((credits,), 1, 1)
        assert refused.value.resets_at is None and refused.value.reason == "insufficient_credits"
        topped = Pool("credit:acct_y", "credits", 1_500, None, "acct_y")  # credits granted: the limit grows
        assert (await ledger.reserve((topped,), 10_000, 1)).amount == 500
        client = Redis.from_url(redis_server.url)
        assert await client.pttl("tg:{acct_y}:s:credit:acct_y:0") == -1  # a balance never expires
        await client.aclose()
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_no_hold_is_renewed_past_the_longest_a_request_may_take(tmp_path, redis_server):
    async def main():
        store = await open_store(tmp_path)
        ledger, _ = await open_instance(redis_server.url, store, hold_seconds=1.0, renew_every=0.1,
                                        max_hold_seconds=1.5)
        (sub,) = pools("acct_z", 1_000)
        lost = await ledger.reserve((sub,), 1_000, 1_000)  # a request the gateway lost track of
        await asyncio.sleep(1.3)
        assert (await ledger.read(sub)).reserved == 1_000  # renewed past its first deadline
        for _ in range(100):  # bounded: renewal stops at 1.5 s of age, the hold lapses a second later
            if (await ledger.read(sub)).reserved == 0:
                break
            await asyncio.sleep(0.1)
        assert (await ledger.read(sub)).reserved == 0
        assert ledger.open_reservations() == 1  # still this process's to settle: charged what fits
        assert (await ledger.settle(lost, 400, record())).charged == 400
        await ledger.close()
        await store.close()

    asyncio.run(main())
