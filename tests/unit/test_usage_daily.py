"""The daily aggregates (migration 0014, `usage_daily`) are their hours' sums, always, on a real SQLite file.

Reports and charts read whole UTC days from `usage_daily` and the hours at a range's ends from `usage_hourly`
(store/usage_queries.py `parts`), so the two tables must agree to the nano-dollar: both are rolled up from the
same queued records in one transaction (store/rollup.py), and the migration fills the daily table from the hourly one.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
from importlib import resources

from tollgate.domain.accounts import Account
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.sqlite import SQLiteStore
from tollgate.store.usage_queries import DAY, HOUR, UNFOLDED_HOURS, parts

T0 = 1_764_028_800  # a UTC midnight
COLUMNS = "requests, input_tokens, output_tokens, cached_tokens, cache_write_tokens, cost, cache_saved, fallbacks"
GROUP = "account_id, key_id, model, upstream_model, route, status"
ROLLED = (f"SELECT {GROUP}, hour - hour % 86400 AS day, {', '.join(f'SUM({c})' for c in COLUMNS.split(', '))}"
          f" FROM usage_hourly GROUP BY {GROUP}, day ORDER BY {GROUP}, day")
DAILY = f"SELECT {GROUP}, day, {COLUMNS} FROM usage_daily ORDER BY {GROUP}, day"


def record(n: int, rng: random.Random) -> UsageRecord:
    at = T0 + rng.choice([-0.0000004, 0, 1.5, 3599.9, DAY - 0.25, DAY, 2 * DAY + 7, rng.uniform(0, 5 * DAY)])
    cost = rng.choice([0, 1, 2**53 + 1, rng.randint(0, 10**12)])
    return UsageRecord(f"r{n}", at, rng.choice(["a", "b"]), rng.choice(["k1", "k2"]), None, rng.choice(["m1", "m2"]),
                       rng.choice([None, "up"]), rng.choice([None, "code"]), "chat", rng.choice([200, 429]),
                       rng.randint(0, 99), rng.randint(0, 99), cost, 2.0, False, False, fallbacks=rng.randint(0, 1),
                       cached_prefix_tokens=rng.choice([None, 3]), cache_write_tokens=rng.choice([None, 4]),
                       cache_saved=rng.choice([None, -5, 6]))


def test_every_day_is_the_sum_of_its_hours_and_the_migration_fills_it_so(tmp_path):
    rng = random.Random(3)
    records = [record(n, rng) for n in range(500)]
    path = tmp_path / "daily.db"

    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        try:
            for account in ("a", "b"):
                await store.create_account(Account(account, account, 1))
            for at in range(0, len(records), 60):
                await store.write_ledger(LedgerBatch(records[at:at + 60], [], [], []))
            await store.usage_total("a", None, 0)  # every journaled batch is in the database
        finally:
            await store.close()

    asyncio.run(main())
    conn = sqlite3.connect(path)
    daily = conn.execute(DAILY).fetchall()
    assert daily == conn.execute(ROLLED).fetchall()
    assert sum(row[12] for row in daily) == sum(r.cost for r in records)
    script = resources.files("tollgate.store").joinpath("migrations/sqlite/0014_usage_daily.sql").read_text()
    fill = re.search(r"INSERT INTO usage_daily\s+SELECT.*?;", script, re.S).group(0)
    conn.execute("DELETE FROM usage_daily")
    conn.execute(fill)
    assert conn.execute(DAILY).fetchall() == daily


def test_the_parts_of_a_range_cover_it_once():
    """Whole days from the daily table and its unfolded hours, the hours at either end from the hourly one:
    wherever the fold's mark stands, every hour once, nothing twice, nothing left."""
    for first, end in [(T0 + 5 * HOUR, T0 + 3 * DAY + 2 * HOUR), (T0, T0 + 2 * DAY), (T0 + HOUR, T0 + 20 * HOUR),
                       (T0 + 20 * HOUR, T0 + DAY + 3 * HOUR), (None, T0 + DAY + HOUR), (T0 + HOUR, None), (None, None)]:
        got = parts(first, end, True)
        lo = first if first is not None else T0 - 10 * DAY
        hi = end if end is not None else T0 + 10 * DAY
        for mark in (T0 - 20 * DAY, T0, T0 + 7 * HOUR, T0 + DAY + 2 * HOUR, T0 + 20 * DAY):
            covered = []
            for table, column, a, b in got:
                step = DAY if table == "usage_daily" else HOUR
                assert column == ("hour" if step == HOUR else "day")
                a = lo if a is None else a
                b = hi if b is None else b
                assert a % step == 0 or a == lo, (first, end)
                hours = list(range(a, b, HOUR)) if step == HOUR else [h for d in range(a, b, DAY)
                                                                       for h in range(d, d + DAY, HOUR)]
                if table == "usage_daily":
                    hours = [h for h in hours if h < mark]
                elif table == UNFOLDED_HOURS:
                    hours = [h for h in hours if h >= mark]
                covered += hours
            assert sorted(covered) == list(range(lo, hi, HOUR)), (first, end, mark)
        assert parts(first, end, False) == [("usage_hourly", "hour", first, end)]
