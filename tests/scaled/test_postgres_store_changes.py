"""The change log across processes: a change made through one store is seen by a second store on the same
database (its change counter and its change log) within a second, by LISTEN or, with the listener cut off
by the server, by the poll; and a key revoked through one is refused by the other's request path."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tollgate.accounts.auth import ConsumptionAuth
from tollgate.domain.accounts import Account, ApiKey
from tollgate.domain.refusals import KeyRefused
from tollgate.domain.secrets import hash_secret
from tollgate.store.postgres import PostgresStore

T0 = 1_764_000_000
SECRET = "sk_" + "a" * 40
SEEN_WITHIN = 1.0  # seconds (SPEC section 6: revocations apply everywhere within a second)


async def two_stores(url: str, tmp_path) -> tuple[PostgresStore, PostgresStore]:
    first = PostgresStore(url, journal_dir=tmp_path / "journal")
    second = PostgresStore(url, journal_dir=tmp_path / "journal")  # the same directory: another slot
    await first.open()
    await second.open()
    return first, second


async def seen_by(store: PostgresStore, seq: int) -> bool:
    """Whether `store`'s counter reaches `seq` within SEEN_WITHIN (a bounded poll)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SEEN_WITHIN
    for _ in range(1000):
        if store.change_seq() >= seq:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return False


async def seed(store: PostgresStore) -> None:
    await store.create_account(Account("acct_1", "Acme", T0))
    await store.create_api_key(ApiKey("key_1", "acct_1", "payg", "k", "sk_aaa", T0), hash_secret(SECRET))


def test_a_second_store_sees_a_change_within_a_second(pg_url, tmp_path):
    async def main() -> None:
        first, second = await two_stores(pg_url, tmp_path)
        try:
            assert first._slot is not None and second._slot is not None
            assert first._slot.number != second._slot.number
            before = second.change_seq()
            await seed(first)
            assert first.change_seq() > before  # its own change at once
            assert await seen_by(second, first.change_seq())
            changes = await second.changes_since(before)
            assert changes.complete and changes.last == first.change_seq()
            assert ("account", "acct_1") in changes.items and ("key", "key_1") in changes.items
        finally:
            await second.close()
            await first.close()

    asyncio.run(main())


def test_the_poll_carries_changes_while_the_listener_is_cut_off(pg_url, tmp_path, postgres):
    async def main() -> None:
        first, second = await two_stores(pg_url, tmp_path)
        try:
            await seed(first)
            assert await seen_by(second, first.change_seq())
            # The server ends every listening session (the second store's LISTEN connection among them).
            postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
            await first.revoke_api_key("key_1", T0 + 1)
            assert await seen_by(second, first.change_seq())
            changes = await second.changes_since(first.change_seq() - 1)
            assert changes.items == (("key", "key_1"),)
        finally:
            await second.close()
            await first.close()

    asyncio.run(main())


def test_a_key_revoked_through_one_process_is_refused_by_another_within_a_second(pg_url, tmp_path):
    async def main() -> None:
        first, second = await two_stores(pg_url, tmp_path)
        try:
            await seed(first)
            auth = ConsumptionAuth(second)
            assert (await auth.authenticate(SECRET)).key.id == "key_1"  # cached in the second process now
            await first.revoke_api_key("key_1", T0 + 1)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SEEN_WITHIN
            refused = False
            for _ in range(1000):
                try:
                    await auth.authenticate(SECRET)
                except KeyRefused as refusal:
                    assert refusal.reason == KeyRefused.REVOKED
                    refused = True
                    break
                if loop.time() > deadline:
                    break
                await asyncio.sleep(0.01)
            assert refused
        finally:
            await second.close()
            await first.close()

    asyncio.run(main())


def test_changes_come_in_commit_order_without_holes(pg_url, tmp_path):
    """Concurrent changes through two stores, one rolled back: the log's numbers are dense and every change is in."""
    async def main() -> None:
        first, second = await two_stores(pg_url, tmp_path)
        try:
            start = first.change_seq()
            await asyncio.gather(*(store.create_account(Account(f"a{n}", "x", T0))
                                   for n in range(20) for store in [(first, second)[n % 2]]))
            with pytest.raises(asyncpg.UniqueViolationError):
                await first.create_account(Account("a0", "duplicate", T0))  # rolled back: takes no number
            await second.create_account(Account("last", "x", T0))
            changes = await first.changes_since(start)
            assert changes.complete
            assert sorted(ref for _, ref in changes.items) == sorted([f"a{n}" for n in range(20)] + ["last"])
            assert changes.last == start + 21
        finally:
            await second.close()
            await first.close()

    asyncio.run(main())
