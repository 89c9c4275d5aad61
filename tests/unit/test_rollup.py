"""SQLite's usage aggregates are rolled up in bulk (store/rollup.py, migration 0015), and are exact whenever read.

A record queues its id as it is written; the store folds the queue into `usage_hourly` and `usage_daily`
with its ledger writes now and then, before every read of them, before pruning, and when it closes. On a
real SQLite file, through the store's own journaled write path: whatever the interleaving of writes, reads
and prunes, every aggregate row equals the sums of its records, and no record is counted twice.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import defaultdict

from tollgate.domain.accounts import Account
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.sqlite import SQLiteStore

T0 = 1_764_028_800  # a UTC midnight
HOUR, DAY = 3600, 86400
HOURLY = ("SELECT account_id, hour, key_id, model, upstream_model, route, status, requests, cost, input_tokens,"
          " output_tokens, cached_tokens, fallbacks FROM usage_hourly")
DAILY = HOURLY.replace("usage_hourly", "usage_daily").replace("hour,", "day,")


def record(n: int, rng: random.Random) -> UsageRecord:
    at = T0 + rng.choice([0, 1.5, HOUR - 0.25, HOUR, DAY - 0.5, rng.uniform(0, 3 * DAY)])
    return UsageRecord(f"r{n}", at, rng.choice(["a", "b"]), rng.choice(["k1", "k2", "k3"]), None,
                       rng.choice(["m1", "m2"]), rng.choice([None, "up"]), rng.choice([None, "code"]), "chat",
                       rng.choice([200, 429]), rng.randint(0, 99), rng.randint(0, 99),
                       rng.choice([0, 1, 2**53 + 1, rng.randint(0, 10**12)]), 2.0, False, False,
                       fallbacks=rng.randint(0, 1), cached_prefix_tokens=rng.choice([None, 3]))


def sums(rows: list[UsageRecord], size: int) -> dict:
    out: dict = defaultdict(lambda: [0] * 6)
    for r in rows:
        key = (r.account_id, int(r.created_at) // size * size, r.key_id, r.model, r.upstream_model or "",
               r.route or "", r.status)
        for i, value in enumerate((1, r.cost, r.input_tokens, r.output_tokens, r.cached_prefix_tokens or 0,
                                   r.fallbacks)):
            out[key][i] += value
    return dict(out)


def table(conn: sqlite3.Connection, sql: str) -> dict:
    return {tuple(row[:7]): list(row[7:]) for row in conn.execute(sql)}


async def opened(path, **options) -> SQLiteStore:
    store = SQLiteStore(f"sqlite:///{path}", **options)
    await store.open()
    await store.claim_ledger()  # as the gateway: journaled, then written in bulk
    for account in ("a", "b"):
        await store.create_account(Account(account, account, 1))
    return store


def test_records_wait_in_the_queue_and_every_read_of_the_aggregates_sees_them_all(tmp_path):
    rng = random.Random(18)
    rows = [record(n, rng) for n in range(600)]
    path = tmp_path / "rollup.db"
    seen = []

    async def main() -> None:
        store = await opened(path, roll_up_every=3600.0)  # never with the writes here: reads must do it
        try:
            written: list[UsageRecord] = []
            for at in range(0, len(rows), 40):
                await store.write_ledger(LedgerBatch(rows[at:at + 40], [], [], []))
                written += rows[at:at + 40]
                await store.usage_records("a")  # every journaled batch is in the database: not the aggregates
                outside = sqlite3.connect(path)
                queued = outside.execute("SELECT COUNT(*) FROM usage_unrolled").fetchone()[0]
                if rng.random() < 0.4:
                    series = await store.usage_series("a", T0, T0 + 4 * DAY, "key", HOUR)
                    total = sum(p.sums.cost for p in series.points)
                    assert total == sum(r.cost for r in written if r.account_id == "a")
                    assert outside.execute("SELECT COUNT(*) FROM usage_unrolled").fetchone()[0] == 0
                    assert table(outside, HOURLY) == sums(written, HOUR)
                    assert table(outside, DAILY) == sums(written, DAY)
                    seen.append(queued)
                outside.close()
        finally:
            await store.close()

    asyncio.run(main())
    assert seen and max(seen) > 0, "the records waited in the queue before the reads rolled them up"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM usage_unrolled").fetchone()[0] == 0  # closing rolled up the rest
    assert table(conn, HOURLY) == sums(rows, HOUR)
    assert table(conn, DAILY) == sums(rows, DAY)


def test_the_ledger_writes_roll_up_when_it_is_due(tmp_path):
    rng = random.Random(5)
    rows = [record(n, rng) for n in range(200)]
    path = tmp_path / "due.db"

    async def main() -> None:
        store = await opened(path, roll_up_every=0.0)  # due at every hand-off
        try:
            await store.write_ledger(LedgerBatch(rows, [], [], []))
            await store.usage_records("a")  # the hand-off is done, and no read of the aggregates ran
            outside = sqlite3.connect(path)
            assert outside.execute("SELECT COUNT(*) FROM usage_unrolled").fetchone()[0] == 0
            assert table(outside, HOURLY) == sums(rows, HOUR)
            outside.close()
        finally:
            await store.close()

    asyncio.run(main())


def test_pruning_counts_the_queued_records_first(tmp_path):
    rng = random.Random(7)
    rows = [record(n, rng) for n in range(300)]
    path = tmp_path / "prune.db"

    async def main() -> tuple[int, int]:
        store = await opened(path, roll_up_every=3600.0)
        try:
            await store.write_ledger(LedgerBatch(rows, [], [], []))
            await store.usage_records("a")
            pruned, _ = await store.prune_usage(T0 + 2 * DAY, 10_000)
            left = len(await store.usage_records("a")) + len(await store.usage_records("b"))
            return pruned, left
        finally:
            await store.close()

    pruned, left = asyncio.run(main())
    assert pruned == sum(r.created_at < T0 + 2 * DAY for r in rows) > 0
    assert left == len(rows) - pruned
    conn = sqlite3.connect(path)
    assert table(conn, HOURLY) == sums(rows, HOUR)  # the pruned records too: they were counted before they went
    assert table(conn, DAILY) == sums(rows, DAY)
