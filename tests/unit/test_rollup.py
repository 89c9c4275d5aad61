"""SQLite's ledger writes are rolled up in bulk (store/rollup.py, migration 0016), and exact whenever read.

A batch appends its records to `usage_inbox` and its spend to `spend_unfolded`; the store moves the inbox
into `usage_records`, `usage_hourly` and `usage_daily`, and folds the spend into `spend_counters`, with its
ledger writes now and then, before every read of usage, before pruning, and when it closes (the spend alone
before it reads a counter). On a real SQLite file, through the store's own journaled write path: whatever
the interleaving of writes, reads and prunes, every record is moved once and in order, every aggregate row
equals the sums of its records, and every counter the sum of its increments.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import defaultdict
from dataclasses import replace

from tollgate.domain.accounts import Account
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement
from tollgate.ledger.sql import USAGE_FIELDS, apply_entries, ledger_rows
from tollgate.store.migrate import migrate, migrations, split_sql
from tollgate.store.rollup import fold_spend, roll_up
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


def count(conn: sqlite3.Connection, table_name: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {table_name}").fetchone()[0]


def spend_of(rows: list[UsageRecord]) -> list[SpendIncrement]:
    return [SpendIncrement(f"key:{r.key_id}", T0, r.cost) for r in rows] + [SpendIncrement("sub:s", T0, 1)]


def test_records_wait_in_the_inbox_and_every_read_sees_them_all(tmp_path):
    rng = random.Random(18)
    rows = [record(n, rng) for n in range(600)]
    path = tmp_path / "rollup.db"
    seen: list[int] = []
    left: list[int] = []  # records of the other account still waiting after a read of one

    async def main() -> None:
        store = await opened(path, roll_up_every=3600.0)  # never with the writes here: reads must do it
        try:
            written: list[UsageRecord] = []
            for at in range(0, len(rows), 40):
                await store.write_ledger(LedgerBatch(rows[at:at + 40], spend_of(rows[at:at + 40]), [], []))
                written += rows[at:at + 40]
                # A ledger read: every journaled batch is in the database, the spend folded, the records not moved.
                assert await store.read_spend("key:k1", T0) == sum(r.cost for r in written if r.key_id == "k1")
                assert await store.read_spend("sub:s", T0) == len(written) // 40
                outside = sqlite3.connect(path)
                assert count(outside, "spend_unfolded") == 0
                waiting = count(outside, "usage_inbox")
                assert waiting + count(outside, "usage_records") == len(written)
                if rng.random() < 0.4:
                    account = rng.choice(["a", "b"])  # a read of one account moves that account's records only
                    others = [r.request_id for r in written if r.account_id != account]
                    waiting_others = {r[0] for r in outside.execute("SELECT request_id FROM usage_inbox")} & set(others)
                    if rng.random() < 0.5:
                        series = await store.usage_series(account, T0, T0 + 4 * DAY, "key", HOUR)
                        total = sum(p.sums.cost for p in series.points)
                        assert total == sum(r.cost for r in written if r.account_id == account)
                    else:
                        found = await store.usage_records(account)
                        assert [r.request_id for r in found] == [
                            r.request_id for r in written if r.account_id == account]
                    inbox = [r[0] for r in outside.execute("SELECT request_id FROM usage_inbox")]
                    assert set(inbox) == waiting_others  # its own all moved, the others' still waiting
                    left.append(len(inbox))
                    moved = [r[0] for r in outside.execute("SELECT request_id FROM usage_records WHERE account_id = ?"
                                                           " ORDER BY id", (account,))]
                    assert moved == [r.request_id for r in written if r.account_id == account]  # once, in order
                    mine = [r for r in written if r.account_id == account]
                    assert {k: v for k, v in table(outside, HOURLY).items() if k[0] == account} == sums(mine, HOUR)
                    assert {k: v for k, v in table(outside, DAILY).items() if k[0] == account} == sums(mine, DAY)
                    seen.append(waiting)
                if rng.random() < 0.15:  # a read of every account moves everything
                    await store.routed_samples(10, 0)
                    assert count(outside, "usage_inbox") == 0
                    assert [r[0] for r in outside.execute("SELECT request_id FROM usage_records ORDER BY id")] == [
                        r.request_id for r in written]  # each once, numbered in the order written (0018)
                    assert table(outside, HOURLY) == sums(written, HOUR)
                    assert table(outside, DAILY) == sums(written, DAY)
                outside.close()
        finally:
            await store.close()

    asyncio.run(main())
    assert seen and max(seen) > 0, "the records waited in the inbox before the reads rolled them up"
    assert max(left) > 0, "a read of one account left the other's records waiting"
    conn = sqlite3.connect(path)
    assert count(conn, "usage_inbox") == count(conn, "spend_unfolded") == 0  # closing rolled up the rest
    assert count(conn, "usage_records") == len(rows)
    assert table(conn, HOURLY) == sums(rows, HOUR)
    assert table(conn, DAILY) == sums(rows, DAY)


def test_days_are_folded_from_closed_hours_and_read_whole_whatever_the_mark(tmp_path):
    """`usage_daily` holds exactly the hours before `daily_through` (migration 0017), which follows the wall
    clock's hour at each roll-up and never goes back; a record of an hour already folded (a stream that
    settles late) goes into both tables; a read of whole days adds the hours from the mark on."""
    rng = random.Random(17)
    path = tmp_path / "fold.db"
    now = [T0 + 5 * HOUR + 10.0]
    marks = []

    async def main() -> None:
        store = await opened(path, roll_up_every=3600.0, clock=lambda: now[0])
        try:
            written: list[UsageRecord] = []
            for step in range(30):
                now[0] += rng.choice([0, 600, HOUR, 3 * HOUR, DAY, -2 * HOUR])  # (a clock set back, now and then)
                batch = [replace(record(step * 100 + n, rng), created_at=now[0] - rng.choice(
                    [0, 5, HOUR, 2.5 * HOUR, DAY, 2 * DAY + 1])) for n in range(rng.randint(1, 30))]
                await store.write_ledger(LedgerBatch(batch, [], [], []))
                written += batch
                full = rng.random() < 0.5
                if full:  # a read of every account: the whole roll-up, which folds the closed hours
                    await store.routed_samples(1, 0)
                # Reads of one account (their own records moved first, no fold): right whatever the mark.
                series = await store.usage_series("a", T0 - 3 * DAY, now[0] + DAY, None, DAY)
                assert {p.start: p.sums.cost for p in series.points} == {
                    day: sum(r.cost for r in written if r.account_id == "a" and int(r.created_at) // DAY * DAY == day)
                    for day in {int(r.created_at) // DAY * DAY for r in written if r.account_id == "a"}}
                total = await store.usage_summary("b", since=T0 - 3 * DAY)
                assert total.total.cost == sum(r.cost for r in written if r.account_id == "b")
                outside = sqlite3.connect(path)
                mark = int(outside.execute("SELECT value FROM meta WHERE key = 'daily_through'").fetchone()[0])
                if full:
                    assert mark == max([int(now[0]) // HOUR * HOUR, *marks])  # the clock's hour, never back
                else:
                    assert mark == max(marks, default=0)
                marks.append(mark)
                assert table(outside, DAILY) == sums([r for r in written if r.created_at < mark], DAY)
                assert table(outside, HOURLY) == sums(written, HOUR)
                outside.close()
        finally:
            await store.close()

    asyncio.run(main())
    assert len(set(marks)) >= 4 and any(m % DAY for m in marks)  # the mark moved; days were read half folded


def test_the_ledger_writes_roll_up_when_it_is_due(tmp_path):
    rng = random.Random(5)
    rows = [record(n, rng) for n in range(200)]
    path = tmp_path / "due.db"

    async def main() -> None:
        store = await opened(path, roll_up_every=0.0)  # due at every hand-off
        try:
            await store.write_ledger(LedgerBatch(rows, spend_of(rows), [], []))
            await store.read_spend("sub:s", T0)  # the hand-off is done; no read of usage ran
            outside = sqlite3.connect(path)
            assert count(outside, "usage_inbox") == count(outside, "spend_unfolded") == 0
            assert count(outside, "usage_records") == len(rows)
            assert table(outside, HOURLY) == sums(rows, HOUR)
            assert dict(outside.execute("SELECT pool, spent FROM spend_counters")) == {
                **{f"key:{k}": sum(r.cost for r in rows if r.key_id == k) for k in {r.key_id for r in rows}},
                "sub:s": 1}
            outside.close()
        finally:
            await store.close()

    asyncio.run(main())


def test_a_quiet_store_rolls_up_what_waits_without_another_write(tmp_path):
    """The last records before a pause reach `usage_records` by themselves: the database thread rolls up
    what waits when it has been idle for a second, long before `roll_up_every`; a bounded wait, never a hang."""
    rng = random.Random(9)
    rows = [record(n, rng) for n in range(50)]
    path = tmp_path / "quiet.db"

    async def main() -> tuple[int, int, float]:
        store = await opened(path, roll_up_every=3600.0)
        try:
            await store.write_ledger(LedgerBatch(rows, spend_of(rows), [], []))
            await store.read_spend("sub:s", T0)  # handed over, well before a roll-up is due
            outside = sqlite3.connect(path)
            waited = count(outside, "usage_inbox")
            started = time.monotonic()
            while count(outside, "usage_records") < len(rows) and time.monotonic() - started < 10:
                await asyncio.sleep(0.05)
            moved, took = count(outside, "usage_records"), time.monotonic() - started
            outside.close()
            return waited, moved, took
        finally:
            await store.close()

    waited, moved, took = asyncio.run(main())
    assert moved == len(rows), f"only {moved} of {len(rows)} records rolled up in 10 s of quiet"
    assert waited == len(rows)  # they waited in the inbox: the idle thread moved them


def test_the_inbox_is_a_usage_record():
    """Every column of `usage_records`, with the same type, null rule and default: a row the inbox takes,
    `usage_records` takes too (a future migration that adds a column must add it to both); the inbox numbers
    its rows itself (AUTOINCREMENT, migration 0018), the ledger writes every other column."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    columns = {t: [row[1:] for row in conn.execute(f"PRAGMA table_info({t})")] for t in ("usage_records", "usage_inbox")}
    assert columns["usage_records"][0] == ("id", "INTEGER", 0, None, 1)
    assert columns["usage_inbox"] == columns["usage_records"]
    assert "AUTOINCREMENT" in conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'usage_inbox'").fetchone()[0]
    assert {c[0] for c in columns["usage_inbox"][1:]} == set(USAGE_FIELDS)  # what the ledger writes: all, no more


def test_an_upgraded_inbox_numbers_records_after_the_last_one():
    """Migration 0018 on a database with records stored and some waiting: the waiting ones are numbered after
    the last stored id in their order, and so is every record written after (never a number used twice)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for version, script in migrations():
        if version >= 18:
            break
        for statement in split_sql(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    fields = ", ".join(USAGE_FIELDS)
    rng = random.Random(4)
    row = [getattr(record(0, rng), f) for f in USAGE_FIELDS]
    for n in (40, 41, None, None):  # two records stored (ids 40 and 41), two waiting in the inbox
        row[0] = f"r{n or count(conn, 'usage_inbox') + 100}"
        if n is None:
            conn.execute(f"INSERT INTO usage_inbox ({fields}) VALUES ({', '.join('?' * len(row))})", row)
        else:
            conn.execute(f"INSERT INTO usage_records (id, {fields}) VALUES (?, {', '.join('?' * len(row))})", [n, *row])
    migrate(conn)
    assert conn.execute("SELECT id, request_id FROM usage_inbox ORDER BY id").fetchall() == [(42, "r100"), (43, "r101")]
    roll_up(conn, time.time())
    apply_entries(conn, [(1, ledger_rows(LedgerBatch([record(7, rng)], [], [], [])))])
    assert conn.execute("SELECT id FROM usage_inbox").fetchall() == [(44,)]
    roll_up(conn, time.time())
    assert [r[0] for r in conn.execute("SELECT id FROM usage_records ORDER BY id")] == [40, 41, 42, 43, 44]


def test_a_counter_past_64_bits_does_not_stop_the_fold():
    """The fold adds increments one by one (no SUM that would fail past 64 bits and fail every fold after it)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    conn.executemany("INSERT INTO spend_unfolded VALUES (?, ?, ?)",
                     [("key:big", T0, 2**62), ("key:big", T0, 2**62), ("key:small", T0, 5), ("key:small", T0, 6)])
    fold_spend(conn)
    assert count(conn, "spend_unfolded") == 0
    assert conn.execute("SELECT spent FROM spend_counters WHERE pool = 'key:small'").fetchone() == (11,)
    assert conn.execute("SELECT COUNT(*) FROM spend_counters WHERE pool = 'key:big'").fetchone() == (1,)


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
