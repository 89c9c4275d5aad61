"""PostgreSQL stopped and started again under a store (a cluster of this test's own): usage records wait in the
local journal and all reach the database once it is back; a key already seen keeps working from the key cache,
an unknown one is refused quickly as "unavailable" instead of hanging the request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from tests.support.services import PostgresServer, ServiceMissing
from tollgate.accounts.auth import ConsumptionAuth
from tollgate.domain.accounts import Account, ApiKey
from tollgate.domain.refusals import StoreUnavailable
from tollgate.domain.secrets import hash_secret
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement
from tollgate.store.postgres import PostgresStore

WINDOW = 1_764_000_000
SECRET = "sk_" + "b" * 40


def batch(n: int) -> LedgerBatch:
    r = UsageRecord(f"r{n}", WINDOW + 1.0, "acct_1", "key_1", None, "m", None, None, "chat", 200, 3, 4, n, 1.0,
                    False, False, window_start=WINDOW)
    return LedgerBatch([r], [SpendIncrement("key:key_1", WINDOW, n)], [], [])


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of this test's own: it stops and starts it."""
    try:
        server = PostgresServer()
    except ServiceMissing as error:
        pytest.skip(str(error))
    try:
        server.init().start()
        yield server
    finally:
        server.remove()


async def drained(store: PostgresStore, seconds: float = 30.0) -> bool:
    """Whether the journal backlog empties within `seconds` (a bounded poll)."""
    for _ in range(int(seconds / 0.1)):
        backlog = store.backlog()
        if backlog is not None and backlog.entries == 0:
            return True
        await asyncio.sleep(0.1)
    return False


def test_records_wait_in_the_journal_while_postgres_is_down(own_postgres, tmp_path):
    url = own_postgres.database() + "?request_timeout=1"

    async def main() -> None:
        store = PostgresStore(url, journal_dir=tmp_path / "j")
        await store.open()
        try:
            await store.create_account(Account("acct_1", "Acme", WINDOW))
            await store.create_api_key(ApiKey("key_1", "acct_1", "payg", "k", "sk_bbb", WINDOW), hash_secret(SECRET))
            auth = ConsumptionAuth(store)
            assert (await auth.authenticate(SECRET)).key.id == "key_1"
            for n in range(1, 11):
                await store.write_ledger(batch(n))
            await store._ledger_sync()

            own_postgres.stop("immediate")
            for n in range(11, 41):
                await store.write_ledger(batch(n))  # durable in the local journal: nothing waits on PostgreSQL
            assert (await auth.authenticate(SECRET)).key.id == "key_1"  # a key already seen: from the cache
            with pytest.raises(StoreUnavailable):
                await store.find_key_context(hash_secret("sk_" + "c" * 40))  # unknown: refused, not hung
            with pytest.raises(StoreUnavailable):
                await store.read_spend("key:key_1", WINDOW)
            backlog = store.backlog()
            assert backlog is not None and backlog.entries > 0

            own_postgres.start()
            assert await drained(store)
            assert await store.read_spend("key:key_1", WINDOW) == sum(range(1, 41))
            assert (await auth.authenticate(SECRET)).key.id == "key_1"
        finally:
            await store.close()
        conn = await asyncpg.connect(url.split("?")[0])
        try:
            assert await conn.fetchval("SELECT count(*) FROM usage_records") == 40
            assert await conn.fetchval("SELECT sum(requests) FROM usage_hourly") == 40
        finally:
            await conn.close()

    asyncio.run(main())


def test_a_store_closed_while_postgres_is_down_keeps_its_journal_for_the_next_start(own_postgres, tmp_path):
    url = own_postgres.database()

    async def main(write: bool) -> int:
        store = PostgresStore(url, journal_dir=tmp_path / "j", request_timeout=1)
        await store.open()
        try:
            if write:
                await store.write_ledger(batch(1))
                await store._ledger_sync()
                own_postgres.stop("immediate")
                for n in range(2, 6):
                    await store.write_ledger(batch(n))
                return -1
            return await store.read_spend("key:key_1", WINDOW)
        finally:
            await store.close()

    assert asyncio.run(main(write=True)) == -1
    assert list((tmp_path / "j").glob("journal-0-ledger.log"))
    own_postgres.start()
    assert asyncio.run(main(write=False)) == sum(range(1, 6))


def test_a_stuck_database_costs_a_key_lookup_its_timeout_not_a_hang(pg_url, tmp_path):
    """Another session holds api_keys locked (a migration, a stuck transaction): the lookup gives up after the
    request timeout with StoreUnavailable, and answers again once the lock is gone."""
    async def main() -> None:
        store = PostgresStore(pg_url, journal_dir=tmp_path / "j", request_timeout=0.5)
        await store.open()
        blocker = await asyncpg.connect(pg_url)
        try:
            await store.create_account(Account("acct_1", "Acme", WINDOW))
            await store.create_api_key(ApiKey("key_1", "acct_1", "payg", "k", "sk_bbb", WINDOW), hash_secret(SECRET))
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreUnavailable):
                await store.find_key_contexts([hash_secret(SECRET)])
            await lock.rollback()
            assert list(await store.find_key_contexts([hash_secret(SECRET)])) == [hash_secret(SECRET)]
        finally:
            await blocker.close()
            await store.close()

    asyncio.run(main())
