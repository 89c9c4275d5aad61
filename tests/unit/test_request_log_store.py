"""The request log's pages and the usage series on a real SQLite file (store/request_log.py, usage_series.py)."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest

from tollgate.domain.accounts import Account
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.base import UnknownCursor
from tollgate.store.request_log import RequestFilter
from tollgate.store.sqlite import SQLiteStore
from tollgate.store.usage_series import DAY, HOUR

T0 = 1_764_000_000.0  # an hour boundary

FILTERS = {
    "account": (RequestFilter("a"), lambda r: r.account_id == "a"),
    "key": (RequestFilter("a", key_id="a-k2"), lambda r: r.key_id == "a-k2"),
    "key, operator": (RequestFilter(None, key_id="a-k2"), lambda r: r.key_id == "a-k2"),
    "everyone": (RequestFilter(None), lambda r: True),
    "refused": (RequestFilter("a", status_min=400, status_max=499), lambda r: r.account_id == "a" and r.status == 429),
    "model and time": (RequestFilter("b", model="m1", since=T0 + 1, until=T0 + 7300.25),
                       lambda r: r.account_id == "b" and r.model == "m1" and T0 + 1 <= r.created_at < T0 + 7300.25),
    "model used": (RequestFilter("a", model="up-m2"), lambda r: r.account_id == "a" and r.upstream_model == "up-m2"),
}


def record(n: int, rng: random.Random) -> UsageRecord:
    account = rng.choice(["a", "a", "b"])
    model = rng.choice(["m1", "m2"])
    return UsageRecord(
        f"r{n}", T0 + rng.choice([0, 0, 1.5, 3599.9, 3600, 7300.25, 90_000]), account,
        f"{account}-k{rng.randint(1, 3)}", "sub", model, f"up-{model}", rng.choice([None, "code"]),
        "chat", rng.choice([200, 200, 200, 429, 502]), rng.randint(0, 50), rng.randint(0, 50),
        rng.randint(0, 10**9), 12.5, False, bool(n % 2), fallbacks=rng.randint(0, 1),
        ttft_ms=3.0 if n % 2 else None)


def run(path, fn):
    async def main():
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        try:
            await store.create_account(Account("a", "A", 1))
            await store.create_account(Account("b", "B", 2))
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def walk(store: SQLiteStore, f: RequestFilter, limit: int) -> list:
    """Every row of the filter, `limit` at a time, each page after the last row of the one before."""
    rows, before = [], None
    for _ in range(1000):
        page = await store.request_log(f, before, limit + 1)
        rows += page[:limit]
        if len(page) <= limit:
            return rows
        before = page[limit - 1].id
    raise AssertionError("the log never ended")


def test_pages_walk_every_record_once_newest_first_whatever_the_ties(tmp_path):
    rng = random.Random(7)
    records = [record(n, rng) for n in range(400)]

    async def fn(store: SQLiteStore):
        for at in range(0, len(records), 50):
            await store.write_ledger(LedgerBatch(records[at:at + 50], [], [], []))
        out = {name: (await walk(store, f, 7), await store.request_log(f, None, 10_000))
               for name, (f, _) in FILTERS.items()}
        first_of_a = out["account"][1][0].id
        with pytest.raises(UnknownCursor):
            await store.request_log(RequestFilter("b"), first_of_a, 5)  # a's record is no cursor of b's log
        return out

    for name, (paged, whole) in run(tmp_path / "log.db", fn).items():
        keep = FILTERS[name][1]
        assert sorted(r.record.request_id for r in paged) == sorted(r.request_id for r in records if keep(r)), name
        assert [r.id for r in paged] == [r.id for r in whole], name  # pages: the whole list, once, in order
        if name == "everyone":
            assert [r.id for r in paged] == sorted((r.id for r in paged), reverse=True)
        else:
            times = [(r.record.created_at, r.id) for r in paged]
            assert times == sorted(times, reverse=True), name
        assert all((r.record.ttft_ms is not None) == r.record.stream for r in paged)


def test_the_series_adds_up_to_the_records_to_the_nano_dollar(tmp_path):
    rng = random.Random(11)
    records = [record(n, rng) for n in range(300)]

    async def fn(store: SQLiteStore):
        await store.write_ledger(LedgerBatch(records, [], [], []))
        return (await store.usage_series("a", T0, T0 + 2 * DAY, "key", HOUR),
                await store.usage_series("a", T0, T0 + 2 * DAY, "model", DAY),
                await store.usage_series("a", T0, T0 + HOUR, None, HOUR, key_id="a-k1"),
                await store.usage_series("a", T0, T0 + 2 * DAY, "route", DAY),
                await store.spend_by_account(T0, T0 + 2 * DAY, None, 10),
                await store.spend_by_account(T0, T0 + 2 * DAY, "a", 10))

    by_key, by_model, one, by_route, accounts, after_a = run(tmp_path / "series.db", fn)
    mine = [r for r in records if r.account_id == "a"]
    want: dict = defaultdict(int)
    for r in mine:
        want[(int(r.created_at // HOUR) * HOUR, r.key_id)] += r.cost
    assert {(p.start, p.group): p.sums.cost for p in by_key.points} == dict(want)
    assert sum(p.sums.cost for p in by_model.points) == sum(r.cost for r in mine)
    assert {p.start for p in by_model.points} == {int(r.created_at // DAY) * DAY for r in mine}
    assert sum(p.sums.errors for p in by_model.points) == sum(1 for r in mine if r.status >= 400)
    assert sum(p.sums.requests for p in by_route.points if p.group is None) == sum(1 for r in mine if r.route is None)
    first_hour = [r for r in mine if r.key_id == "a-k1" and r.created_at < T0 + HOUR]
    assert sum(p.sums.cost for p in one.points) == sum(r.cost for r in first_hour)
    assert all(p.group is None for p in one.points)
    assert {a.account_id: a.sums.cost for a in accounts} == {
        "a": sum(r.cost for r in mine), "b": sum(r.cost for r in records if r.account_id == "b")}
    assert [a.account_id for a in after_a] == ["b"]


async def bounded_walk(store: SQLiteStore, f: RequestFilter, limit: int, scan: int) -> tuple[list, int]:
    """Every row of the filter, pages of `limit` that each read at most `scan` records, each page going on from
    where the one before stopped (its last row, or the last record its walk read); (rows, short pages)."""
    rows, before, short = [], None, 0
    for _ in range(1000):
        page = await store.request_log(f, before, limit + 1, scan=scan)
        assert len(page) <= limit + 1
        rows += page[:limit]
        if len(page) > limit:
            before = page[limit - 1].id
        elif page.stopped_at is not None:
            short += 1
            before = page.stopped_at
        else:
            return rows, short
    raise AssertionError("the log never ended")


def test_a_page_reads_at_most_its_bound_and_the_pages_still_give_every_record_once(tmp_path):
    """A filter that matches rarely stops reading at the bound: a short page (even an empty one) says where it
    stopped, and walking on from there gives exactly the filter's records, once, newest first."""
    rng = random.Random(5)
    records = [record(n, rng) for n in range(400)]
    rare = [UsageRecord(f"rare{n}", T0 + 50 + n * 0.5, "a", "a-k1", "sub", "rare", None, None, "chat", 429, 1, 1,
                        n + 1, 1.0, False, False) for n in range(3)]
    # the rare model's three records are the oldest of the account: 250-odd newer ones to read past first
    records = [r for r in records if r.created_at > T0 + 100] + rare

    async def fn(store: SQLiteStore):
        await store.write_ledger(LedgerBatch(records, [], [], []))
        filters = {**{name: f for name, (f, _) in FILTERS.items()},
                   "rare": RequestFilter("a", model="rare"), "rare refusals": RequestFilter("a", model="rare",
                                                                                             status_min=400,
                                                                                             status_max=499)}
        out = {}
        for name, f in filters.items():
            out[name] = (await bounded_walk(store, f, 4, 9), await store.request_log(f, None, 10_000))
        first = await store.request_log(RequestFilter("a", model="rare"), None, 51, scan=9)
        return out, first

    out, first = run(tmp_path / "bounded.db", fn)
    assert len(first) == 0 and first.stopped_at is not None  # the newest 9 records of "a" hold no rare one
    for name, ((paged, _), whole) in out.items():
        assert [r.id for r in paged] == [r.id for r in whole], name
    assert out["rare"][0][1] > 10 and [r.record.request_id for r in out["rare"][0][0]] == ["rare2", "rare1", "rare0"]
    assert out["account"][0][1] == 0  # no filter thins the account's walk: never a short page
