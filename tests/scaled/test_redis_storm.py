"""Exactness under a storm: two ledger instances on one Redis, hundreds of concurrent requests.

Two RedisLedger instances (two clients and two stores on one database, as two gateway
processes) take turns on one subscription pool, and each key's own budget, with random
wants, minimums, costs, releases and cancellations. The budget affords a fraction of
what is asked. After each round: every pool's spend is within its limit to the nano-dollar,
the Redis counters equal the store's and the sum of what settle reported, the usage
records' sum equals it too, and no hold is left.
"""

from __future__ import annotations

import asyncio
import random

from tests.scaled.redis_support import open_instance, open_store, pools, record, redis_ledger_state, store_rows
from tollgate.domain.refusals import BudgetExhausted

ROUNDS = 4
REQUESTS = 400
CANCELLED = 40
SUB_LIMIT = 40_000_000
KEY_LIMITS = {"k1": 12_000_000, "k2": 9_000_000, "k3": 30_000_000}


async def storm(instances, account: str, rng: random.Random) -> tuple[dict[str, int], dict[str, int]]:
    """One round of concurrent requests on `account`'s pools: (charged per pool, outcomes)."""
    charged: dict[str, int] = {}
    outcomes = {"settles": 0, "settled": 0, "released": 0, "refused": 0}

    async def one(i: int) -> None:
        ledger = instances[i % 2]
        key = rng.choice(sorted(KEY_LIMITS))
        request_pools = pools(account, SUB_LIMIT, KEY_LIMITS[key], key=f"{account}_{key}")
        want = rng.randint(100_000, 2_000_000)
        minimum = rng.randint(1, want // 4)
        try:
            grant = await ledger.reserve(request_pools, want, minimum)
        except BudgetExhausted:
            outcomes["refused"] += 1
            return
        assert minimum <= grant.amount <= want
        try:
            await asyncio.sleep(rng.random() * 0.01)
        except asyncio.CancelledError:  # the client went away: the flow releases, as here
            await ledger.release(grant)
            raise
        if rng.random() < 0.15:
            await ledger.release(grant)
            outcomes["released"] += 1
            return
        cost = rng.randint(0, grant.amount * 5 // 4)  # sometimes above the grant: charged the grant
        outcomes["settles"] += 1  # a settle begun ends, even for a caller cancelled inside it
        settled = await ledger.settle(grant, cost, record(account))
        assert settled.charged == min(cost, grant.amount)  # every hold is live: no clamp applies
        for pool in request_pools:
            charged[pool.id] = charged.get(pool.id, 0) + settled.charged
        outcomes["settled"] += 1

    tasks = [asyncio.create_task(one(i)) for i in range(REQUESTS)]
    # Some requests are cancelled wherever they are (a client gone): waiting, reserving, holding, settling.
    for task in rng.sample(tasks, CANCELLED):
        asyncio.get_running_loop().call_later(rng.random() * 0.3, task.cancel)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    failures = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    assert failures == []
    assert outcomes["refused"] > 0 and outcomes["settled"] > 0  # the storm asked for more than fits
    return charged, outcomes


def test_two_instances_hold_every_limit_exactly_under_a_storm(tmp_path, redis_server):
    async def main():
        rng = random.Random(14)
        stores = [await open_store(tmp_path), await open_store(tmp_path)]
        # Holds far longer than the test: a hold left behind would show, not lapse away.
        instances = [(await open_instance(redis_server.url, store, admission_wait=0.5, poll_every=0.02,
                                          hold_seconds=120.0, renew_every=30.0))[0] for store in stores]
        charged: dict[str, int] = {}
        settled = 0
        for round_ in range(ROUNDS):
            account = f"acct_storm{round_}"
            round_charged, outcomes = await storm(instances, account, rng)
            charged.update(round_charged)
            settled += outcomes["settles"]
            assert 0 < round_charged[f"sub:{account}"] <= SUB_LIMIT
        for ledger in instances:
            await ledger.close()  # a reserve cancelled in flight had its hold freed: nothing may remain
        spend, reserved, holds = await redis_ledger_state(redis_server.url)
        assert (reserved, holds) == (0, 0)
        every_pool = {p for r in range(ROUNDS) for key, limit in KEY_LIMITS.items()
                      for p in pools(f"acct_storm{r}", SUB_LIMIT, limit, key=f"acct_storm{r}_{key}")}

        by_pool: dict[str, int] = {}
        for name, value in spend.items():  # tg:{account}:s:<pool id>:<window start>
            pool_id = name.split(":", 3)[3].rsplit(":", 1)[0]
            by_pool[pool_id] = by_pool.get(pool_id, 0) + value
        stored, count, total = store_rows(tmp_path)
        stored_by_pool: dict[str, int] = {}
        for (pool_id, _), value in stored.items():
            stored_by_pool[pool_id] = stored_by_pool.get(pool_id, 0) + value
        for pool in every_pool:
            # Redis == the store, to the nano, within the limit; at least what the settles that returned charged
            # (a settle whose caller was cancelled still charged, and its record is there too).
            assert by_pool.get(pool.id, 0) == stored_by_pool.get(pool.id, 0) <= pool.limit
            assert stored_by_pool.get(pool.id, 0) >= charged.get(pool.id, 0)
        assert (count, total) == (settled, sum(v for p, v in stored_by_pool.items() if p.startswith("sub:")))
        for store in stores:
            await store.close()

    asyncio.run(main())
