"""The ledger's rows on PostgreSQL: local journal slots applied exactly once (after a crash too), read_spend
counting what is journaled and not yet applied, bad rows set aside, and one embedded ledger per database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import asyncpg
import pytest

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement, StoredReservation
from tollgate.ledger.journal import JournalBusy
from tollgate.store.postgres import PostgresStore
from tollgate.store.postgres import ledger as pg_ledger

WINDOW = 1_764_000_000
POOL = "sub:s"


def record(request_id: str, cost: int, model: str = "m", created_at: float = WINDOW + 1.5) -> UsageRecord:
    return UsageRecord(request_id, created_at, "acct", "key", "sub", model, None, None, "chat", 200, 3, 4,
                       cost, 1.0, False, True, window_start=WINDOW)


def batch(n: int, cost: int = 0) -> LedgerBatch:
    cost = cost or n
    return LedgerBatch([record(f"r{n}", cost)], [SpendIncrement(POOL, WINDOW, cost)], [], [])


async def rows(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def test_batches_reach_postgres_with_their_hourly_aggregates(pg_url, tmp_path):
    async def main() -> None:
        store = PostgresStore(pg_url, journal_dir=tmp_path / "j")
        await store.open()
        try:
            for n in range(1, 501):
                await store.write_ledger(batch(n))
            reservation = StoredReservation("res1", ((POOL, WINDOW),), 99, WINDOW + 1.0, WINDOW + 60.0)
            await store.write_ledger(LedgerBatch([], [], [reservation], []))
            await store._ledger_sync()
            assert await store.load_reservations() == [reservation]
            store.write_ledger_now(LedgerBatch([], [], [], ["res1"]))
            assert await store.load_reservations() == []
            assert await store.read_spend(POOL, WINDOW) == sum(range(1, 501))
        finally:
            await store.close()
        (count, cost), = await rows(pg_url, "SELECT count(*), sum(cost) FROM usage_records")
        assert (count, cost) == (500, sum(range(1, 501)))
        hourly = await rows(pg_url, "SELECT hour, requests, cost, estimated, input_tokens FROM usage_hourly")
        assert [tuple(r) for r in hourly] == [(WINDOW - WINDOW % 3600, 500, sum(range(1, 501)), 0, 1500)]
        assert list((tmp_path / "j").glob("*-ledger.log*")) == []  # a clean close leaves no journal

    asyncio.run(main())


def test_read_spend_counts_what_is_journaled_and_not_yet_applied(pg_url, tmp_path):
    async def main() -> None:
        store = PostgresStore(pg_url, journal_dir=tmp_path / "j")
        await store.open()
        blocker = await asyncpg.connect(pg_url)
        try:
            await store.write_ledger(batch(1, 10))
            await store._ledger_sync()
            assert await store.read_spend(POOL, WINDOW) == 10
            # Another session holds the slot's row: every hand-off waits behind it.
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("SELECT * FROM ledger_journals FOR UPDATE")
            for n in range(2, 12):
                await store.write_ledger(batch(n, 10))
                assert await store.read_spend(POOL, WINDOW) == 10 * n
            in_postgres = await blocker.fetchval("SELECT spent FROM spend_counters")
            assert in_postgres == 10
            assert store.backlog() is not None and store.backlog().entries > 0
            await lock.rollback()
            await store._ledger_sync()
            assert await store.read_spend(POOL, WINDOW) == 110
            assert await blocker.fetchval("SELECT spent FROM spend_counters") == 110
        finally:
            await blocker.close()
            await store.close()

    asyncio.run(main())


CRASH = textwrap.dedent("""
    import asyncio, os, sys
    from tollgate.ledger.batch import LedgerBatch, SpendIncrement
    from tollgate.domain.usage import UsageRecord
    from tollgate.store.postgres import PostgresStore

    url, journal, first, second, slot = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

    def batch(n):
        r = UsageRecord(f"r{n}", 1764000001.5, "acct", "key", "sub", "m", None, None, "chat", 200, 3, 4, n, 1.0,
                        False, True, window_start=1764000000)
        return LedgerBatch([r], [SpendIncrement("sub:s", 1764000000, n)], [], [])

    async def main():
        stores = [PostgresStore(url, journal_dir=journal) for _ in range(slot + 1)]
        for store in stores:
            await store.open()
        store = stores[slot]
        for n in range(1, first + 1):
            await store.write_ledger(batch(n))
        await store._ledger_sync()  # these are in PostgreSQL
        for n in range(first + 1, first + second + 1):
            store.write_ledger_now(batch(n))  # these only in the journal
        os._exit(0)  # killed: no close, no hand-off

    asyncio.run(main())
""")


def crash(url: str, journal, first: int, second: int, slot: int = 0) -> None:
    done = subprocess.run([sys.executable, "-c", CRASH, url, str(journal), str(first), str(second), str(slot)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("slot", [0, 1], ids=["own-slot-retaken", "orphan-slot-swept"])
def test_a_crashed_process_journal_is_applied_exactly_once(pg_url, tmp_path, slot):
    """Slot 0 is taken again by the next process; slot 1 (its process dead, slot 0 free) is replayed by the sweep."""
    journal = tmp_path / "j"
    crash(pg_url, journal, first=30, second=20, slot=slot)
    assert list(journal.glob(f"journal-{slot}-ledger.log"))

    async def main() -> int:
        store = PostgresStore(pg_url, journal_dir=journal)
        await store.open()
        try:
            return await store.read_spend(POOL, WINDOW)
        finally:
            await store.close()

    assert asyncio.run(main()) == sum(range(1, 51))
    assert asyncio.run(main()) == sum(range(1, 51))  # and a second start applies nothing again
    (count, distinct), = asyncio.run(rows(pg_url, "SELECT count(*), count(DISTINCT request_id) FROM usage_records"))
    assert count == distinct == 50


def test_a_row_postgres_cannot_take_is_set_aside_and_the_rest_goes_in(pg_url, tmp_path):
    """A spend counter pushed past 64 bits: that increment is set aside, the batch's records and other counters go in."""
    top = (1 << 63) - 10

    async def main() -> None:
        store = PostgresStore(pg_url, journal_dir=tmp_path / "j")
        await store.open()
        try:
            await store.write_ledger(LedgerBatch([], [SpendIncrement("big", WINDOW, top)], [], []))
            await store.write_ledger(LedgerBatch([record("ok1", 1), record("ok2", 2)],
                                                 [SpendIncrement("big", WINDOW, 20), SpendIncrement(POOL, WINDOW, 3)],
                                                 [], []))
            await store._ledger_sync()
            assert await store.read_spend(POOL, WINDOW) == 3
            assert await store.read_spend("big", WINDOW) == top
        finally:
            await store.close()
        ids = [r[0] for r in await rows(pg_url, "SELECT request_id FROM usage_records ORDER BY id")]
        assert ids == ["ok1", "ok2"]
        rejected = await rows(pg_url, "SELECT kind, payload FROM rejected_records")
        assert [r[0] for r in rejected] == ["spend_counters"] and '"big"' in rejected[0][1]

    asyncio.run(main())


def test_a_nul_character_in_a_record_is_kept_as_a_replacement_character(pg_url, tmp_path):
    """PostgreSQL's text cannot hold NUL, which a client may send (a kept prompt, a session name): the record stays."""
    async def main() -> None:
        store = PostgresStore(pg_url, journal_dir=tmp_path / "j")
        await store.open()
        try:
            kept = UsageRecord("nul", WINDOW + 1.0, "acct", "key", None, "m", None, None, "chat", 200, 3, 4, 7, 1.0,
                               False, False, session="a\x00b", request_text="hi\x00")
            await store.write_ledger(LedgerBatch([kept], [], [], []))
            await store._ledger_sync()
        finally:
            await store.close()
        assert [tuple(r) for r in await rows(pg_url, "SELECT session, request_text FROM usage_records")] == \
            [("a\ufffdb", "hi\ufffd")]
        assert await rows(pg_url, "SELECT * FROM rejected_records") == []

    asyncio.run(main())


def test_one_embedded_ledger_per_database(pg_url, tmp_path):
    async def main() -> None:
        first = PostgresStore(pg_url, journal_dir=tmp_path / "j")
        second = PostgresStore(pg_url, journal_dir=tmp_path / "j")
        await first.open()
        await second.open()
        try:
            await first.claim_ledger()
            with pytest.raises(JournalBusy, match="another tollgate gateway is serving from"):
                await second.claim_ledger()
            await first.close()
            await second.claim_ledger()  # the lock went with the first one's session
        finally:
            await second.close()
            await first.close()

    asyncio.run(main())


def test_an_embedded_ledger_and_a_shared_one_never_keep_one_database(pg_url, tmp_path, monkeypatch):
    """Processes of a shared (Redis) ledger share the database's ledger lock; an embedded ledger needs it alone.
    Either would let the whole budget through beside the other, so whichever comes second is refused."""
    monkeypatch.setattr(pg_ledger, "CLAIM_WAIT_SECONDS", 0.3)

    async def main() -> None:
        stores = [PostgresStore(pg_url, journal_dir=tmp_path / "j") for _ in range(4)]
        for store in stores:
            await store.open()
        shared_one, shared_two, embedded, late = stores
        try:
            await shared_one.share_ledger()
            await shared_two.share_ledger()  # any number of processes share it
            with pytest.raises(JournalBusy, match="or with a shared"):
                await embedded.claim_ledger()
            await shared_one.close()
            await shared_two.close()
            await embedded.claim_ledger()  # free once every sharer has gone
            with pytest.raises(JournalBusy, match="with its embedded ledger"):
                await late.share_ledger()
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def test_a_journal_directory_shared_by_two_databases_never_mixes_them(pg_url, postgres, tmp_path):
    """Another database's gateway on the same directory leaves the dead process's slot alone; its own database's
    next process replays it."""
    journal = tmp_path / "j"
    crash(pg_url, journal, first=0, second=5)
    other = postgres.database()

    async def spent(url: str) -> int:
        store = PostgresStore(url, journal_dir=journal)
        await store.open()
        try:
            assert store._slot is not None and (url == pg_url) == (store._slot.number == 0)
            return await store.read_spend(POOL, WINDOW)
        finally:
            await store.close()

    assert asyncio.run(spent(other)) == 0
    assert list(journal.glob("journal-0-ledger.log"))  # still there, for its own database
    assert asyncio.run(spent(pg_url)) == sum(range(1, 6))
    assert asyncio.run(rows(other, "SELECT count(*) FROM usage_records"))[0][0] == 0


def test_prune_usage_deletes_old_records_account_by_account_and_keeps_the_aggregates(pg_url, tmp_path):
    hour = WINDOW - WINDOW % 3600

    async def main() -> None:
        store = PostgresStore(pg_url, journal_dir=tmp_path / "j")
        await store.open()
        try:
            old = [UsageRecord(f"old{n}", hour - 7200 + n, f"acct{n % 3}", "key", None, "m", None, None, "chat",
                               200, 1, 1, 10, 1.0, False, False) for n in range(9)]
            new = [UsageRecord(f"new{n}", hour + 10 + n, f"acct{n % 3}", "key", None, "m", None, None, "chat",
                               200, 1, 1, 10, 1.0, False, False) for n in range(3)]
            await store.write_ledger(LedgerBatch(old + new, [], [], []))
            deleted, after = await store.prune_usage(hour, limit=2)
            assert (deleted, after) == (2, "")  # the first account has more: go on from the same place
            total = deleted
            for _ in range(10):
                if after is None:
                    break
                deleted, after = await store.prune_usage(hour, limit=2, after=after)
                total += deleted
            assert after is None and total == 9
            assert await store.get_meta("usage_pruned_before") == str(hour)
            await store.prune_usage(hour - 3600, limit=10)  # an earlier horizon never moves it back
            assert await store.get_meta("usage_pruned_before") == str(hour)
        finally:
            await store.close()
        assert [r[0] for r in await rows(pg_url, "SELECT request_id FROM usage_records ORDER BY request_id")] == \
            ["new0", "new1", "new2"]
        assert (await rows(pg_url, "SELECT sum(requests)::bigint FROM usage_hourly"))[0][0] == 12

    asyncio.run(main())
