"""The series cache answers what the store answers, to the nano-dollar, on a real SQLite file (http/series_cache.py);
a chart's view and its JSON are built in pieces that let the event loop run in between (http/usage_series.py).
Records go in through the store's own write path; only the clock is ours, and it moves on while records land.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace

import orjson

from tollgate.domain.accounts import Account, ApiKey
from tollgate.domain.usage import UsageRecord
from tollgate.http.series_cache import MARGIN, MAX_READS, SeriesCache
from tollgate.http.usage_series import CHUNK, json_list, series_view
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.sqlite import SQLiteStore
from tollgate.store.usage_series import DAY, GROUPS, HOUR, SeriesPoint, Sums, UsageSeries

T0 = 1_764_028_800.0  # a UTC midnight
LATE = 905.0  # reservation_ttl 900 + backlog_seconds 5
GROUP_BYS = [None, *GROUPS]


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


class ReadLog:
    """The real store, with the ranges asked of it written down (what the cache reads, not what it answers)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.ranges: list[tuple[float, float]] = []

    async def usage_series(self, account_id, since, until, group_by, bucket, key_id=None) -> UsageSeries:
        self.ranges.append((since, until))
        return await self.store.usage_series(account_id, since, until, group_by, bucket, key_id)


def record(n: int, at: float, rng: random.Random) -> UsageRecord:
    account = rng.choice(["a", "a", "b"])
    model = rng.choice(["m1", "m2", "m3"])
    return UsageRecord(
        f"r{n}", at, account, f"{account}-k{rng.randint(1, 4)}", None, model, rng.choice([None, f"up-{model}"]),
        rng.choice([None, "code", "chat"]), "chat", rng.choice([200, 200, 429, 502]), rng.randint(0, 900),
        rng.randint(0, 900), rng.choice([0, 1, 2**53 + 1, rng.randint(0, 10**12)]), rng.uniform(0.5, 900.0),
        False, bool(n % 2), fallbacks=rng.randint(0, 1), cached_prefix_tokens=rng.choice([None, 7]))


def flat(series: UsageSeries) -> list[tuple[int, object, Sums]]:
    return [(p.start, p.group, p.sums) for p in series.points]


async def open_store(tmp_path) -> SQLiteStore:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'series.db'}")
    await store.open()
    for account in ("a", "b"):
        await store.create_account(Account(account, account, 1))
        for k in (1, 2, 3):  # k4 has no row: no name, in either answer
            await store.create_api_key(ApiKey(f"{account}-k{k}", account, "credit", f"<{account} key {k}>", "sk_x",
                                              int(T0)), f"hash-{account}-{k}")
    return store


async def land(store: SQLiteStore, records: list[UsageRecord]) -> None:
    await store.write_ledger(LedgerBatch(records, [], [], []))  # the store's own path: journal, rows, triggers


def test_cached_answers_are_the_stores_over_random_ranges_while_records_land(tmp_path):
    rng = random.Random(15)
    clock = Clock(T0 + 9 * DAY + 1234.5)
    counter = iter(range(10**6))

    async def main() -> None:
        store = await open_store(tmp_path)
        try:
            for _ in range(15):
                await land(store, [record(next(counter), rng.uniform(T0, clock.now), rng) for _ in range(200)])
            reads = ReadLog(store)
            cache = SeriesCache(reads, clock, LATE)  # type: ignore[arg-type]
            for _ in range(120):
                bucket = rng.choice([HOUR, HOUR, DAY])
                group_by = rng.choice(GROUP_BYS)
                key_id = rng.choice([None, None, None, "a-k2", "a-k4"])
                since = rng.choice([T0 - DAY, T0 + 0.5, rng.uniform(T0, clock.now), clock.now - 7 * DAY,
                                    clock.now - 3 * HOUR])
                until = rng.choice([clock.now, clock.now, rng.uniform(since, clock.now + HOUR)])
                for _ in range(2):  # the second read of a range finds its final buckets cached
                    got = await cache.usage_series("a", since, until, group_by, bucket, key_id)
                    want = await store.usage_series("a", since, until, group_by, bucket, key_id)
                    assert flat(got) == flat(want), (since, until, group_by, bucket, key_id)
                    assert got.key_names == want.key_names
                    assert await series_view(got, group_by) == await series_view(want, group_by)
                # Records land in the hours still live (started at most `LATE` and the margin ago), and time goes on.
                await land(store, [record(next(counter), clock.now - rng.uniform(0, LATE + MARGIN), rng)
                                   for _ in range(rng.randint(1, 30))])
                clock.now += rng.choice([0, 1, 60, 700, HOUR, 2 * HOUR])
            assert cache.hits > 1000 and cache.misses > 0 and cache.evictions == 0
        finally:
            await store.close()

    asyncio.run(main())


def test_a_warm_chart_reads_only_its_live_tail_and_its_partial_buckets(tmp_path):
    rng = random.Random(7)
    clock = Clock(T0 + 8 * DAY + 3 * HOUR + 600)

    async def main() -> None:
        store = await open_store(tmp_path)
        try:
            await land(store, [record(n, rng.uniform(T0, clock.now), rng) for n in range(400)])
            reads = ReadLog(store)
            cache = SeriesCache(reads, clock, LATE)  # type: ignore[arg-type]
            since, until = clock.now - 7 * DAY, clock.now
            final = int((clock.now - LATE - MARGIN) // HOUR) * HOUR  # the first bucket that may still change
            await cache.usage_series("a", since, until, "key", HOUR)
            assert reads.ranges == [(since // HOUR * HOUR, -(-until // HOUR) * HOUR)]  # cold: one read, as before
            reads.ranges.clear()
            warm = await cache.usage_series("a", since, until, "key", HOUR)
            assert reads.ranges == [(final, -(-until // HOUR) * HOUR)]
            assert flat(warm) == flat(await store.usage_series("a", since, until, "key", HOUR))
            reads.ranges.clear()
            await cache.usage_series("a", since, until, "model", DAY)  # cold, in days: one read again
            reads.ranges.clear()
            await cache.usage_series("a", since, until, "model", DAY)
            first_day, last_day = -(-since // DAY) * DAY, int((clock.now - LATE - MARGIN) // DAY) * DAY
            assert reads.ranges == [(since // HOUR * HOUR, first_day), (last_day, -(-until // HOUR) * HOUR)]

            for h in range(0, 24, 2):  # every other hour of the first day, alone
                await cache.usage_series("a", T0 + h * HOUR, T0 + (h + 1) * HOUR, "route", HOUR)
            reads.ranges.clear()
            day = await cache.usage_series("a", T0, T0 + DAY, "route", HOUR)
            assert reads.ranges == [(T0 + HOUR, T0 + DAY)]  # twelve gaps, read as one range
            assert flat(day) == flat(await store.usage_series("a", T0, T0 + DAY, "route", HOUR))
            reads.ranges.clear()
            assert flat(await cache.usage_series("a", T0, T0 + DAY, "route", HOUR)) == flat(day)
            assert reads.ranges == []  # all of it final, all of it kept
        finally:
            await store.close()

    asyncio.run(main())


def test_a_bucket_is_kept_only_once_no_record_can_still_land_in_it(tmp_path):
    """The hour that ended `LATE` and the margin ago, to the second: a record started in its last second may still
    arrive, so the hour is read from the store until then, never from memory."""
    rng = random.Random(5)
    edge = T0 + 2 * DAY  # the end of the hour at the edge
    clock = Clock(edge + LATE + MARGIN - 0.5)

    async def main() -> None:
        store = await open_store(tmp_path)
        try:
            await land(store, [record(n, rng.uniform(T0, clock.now), rng) for n in range(200)])
            cache = SeriesCache(store, clock, LATE)
            await cache.usage_series("a", T0, clock.now, "model", HOUR)
            last = replace(record(1000, edge - 0.25, rng), account_id="a", key_id="a-k1")  # started within the bound
            await land(store, [last])
            got = await cache.usage_series("a", T0, clock.now, "model", HOUR)
            want = await store.usage_series("a", T0, clock.now, "model", HOUR)
            assert flat(got) == flat(want)
            assert any(p.start == edge - HOUR and p.group == last.model for p in want.points)
            clock.now = edge + LATE + MARGIN  # now final: kept, and no record may start in it any more
            await cache.usage_series("a", T0, clock.now, "model", HOUR)
            hits = cache.stats()["hits"]
            await cache.usage_series("a", edge - HOUR, edge, "model", HOUR)
            assert cache.stats()["hits"] == hits + 1
        finally:
            await store.close()

    asyncio.run(main())


def test_an_entry_lives_its_ttl_and_the_cache_holds_at_most_its_points(tmp_path):
    """A record that reaches the store past the bounds (a journal replayed late) shows once its bucket expires;
    the least recently used buckets go first when the points would exceed the ceiling."""
    rng = random.Random(11)
    clock = Clock(T0 + 3 * DAY + 100)

    async def main() -> None:
        store = await open_store(tmp_path)
        try:
            await land(store, [record(n, rng.uniform(T0, clock.now), rng) for n in range(300)])
            cache = SeriesCache(store, clock, LATE, ttl=120.0)
            since = T0
            before = await cache.usage_series("a", since, clock.now, "model", HOUR)
            late = replace(record(10_000, T0 + 5, rng), account_id="a", key_id="a-k1")
            await land(store, [late])
            clock.now += 119
            stale = await cache.usage_series("a", since, clock.now, "model", HOUR)
            assert [p for p in flat(stale) if p[0] == T0] == [p for p in flat(before) if p[0] == T0]
            clock.now += 1
            fresh = await cache.usage_series("a", since, clock.now, "model", HOUR)
            assert flat(fresh) == flat(await store.usage_series("a", since, clock.now, "model", HOUR))
            assert flat(fresh) != flat(stale) and cache.stats()["expired"] > 0

            reads = ReadLog(store)
            small = SeriesCache(reads, clock, LATE, max_points=120)  # type: ignore[arg-type]
            for n in range(40):  # ranges that overlap: what one evicts, the next reads back, around what stayed
                group_by = GROUP_BYS[n // 7 % len(GROUP_BYS)]
                a, b = since + rng.randint(0, 60) * HOUR, clock.now - rng.randint(0, 10) * HOUR
                reads.ranges.clear()
                got = await small.usage_series("a", a, b, group_by, HOUR)
                assert flat(got) == flat(await store.usage_series("a", a, b, group_by, HOUR))
                assert small.stats()["size"] <= 120 and len(reads.ranges) <= MAX_READS
            assert small.stats()["evictions"] > 0 and small.stats()["hits"] > 0
        finally:
            await store.close()

    asyncio.run(main())


def test_a_big_view_and_its_json_let_the_event_loop_run_between_chunks():
    points = [SeriesPoint(int(T0) + (n // 20) * HOUR, f"k{n % 20}", Sums(1, 2, 3, 0, 10**9 + n, 0, 0, 1.5))
              for n in range(3000)]
    series = UsageSeries(points, {f"k{n}": f"key {n}" for n in range(20)})

    async def main() -> tuple[int, tuple, list | orjson.Fragment]:
        turns, done = 0, asyncio.Event()

        async def other_requests() -> None:
            nonlocal turns
            while not done.is_set() and turns < 100_000:
                turns += 1
                await asyncio.sleep(0)

        other = asyncio.create_task(other_requests())
        await asyncio.sleep(0)
        view = await series_view(series, "key")
        encoded = await json_list(view[0])
        done.set()
        await other
        return turns, view, encoded

    turns, (views, groups, total), encoded = asyncio.run(main())
    assert turns >= 2 * (len(points) // CHUNK)  # the view and its JSON each yielded once a chunk
    assert orjson.dumps({"points": encoded}) == orjson.dumps({"points": views})
    assert views[0] == {"start": "2025-11-25T00:00:00Z", "group": "k0", "name": "key 0", "requests": 1,
                        "inputTokens": 2, "outputTokens": 3, "cachedTokens": 0, "cost": "1.00", "costNanos": 10**9,
                        "errors": 0, "fallbacks": 0, "latencyMsAvg": 1.5}
    assert (len(views), len(groups), total["costNanos"]) == (3000, 20, sum(10**9 + n for n in range(3000)))
