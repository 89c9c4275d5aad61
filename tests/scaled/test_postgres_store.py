"""The PostgreSQL store's account model on a real server: round trips, and each check-and-change atomic under
concurrency (two coroutines on two pooled connections, as two processes would be)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg
import pytest

from tollgate.domain.accounts import Account, ApiKey, ManagementKey, Plan, Subscription
from tollgate.domain.refusals import Conflict
from tollgate.store import open_store
from tollgate.store.base import UnknownCursor
from tollgate.store.postgres import PostgresStore
from tollgate.store.postgres.schema import migrations

T0 = 1_764_000_000


def run(url: str, tmp_path, body: Callable[[PostgresStore], Awaitable[object]]) -> object:
    async def main() -> object:
        store = open_store(url, journal_dir=tmp_path / "journal")
        assert isinstance(store, PostgresStore)
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


PLAN = Plan("pro", "Pro", 20_000_000_000, 30, 3600, 5_000_000_000, 60, 100_000, ("m1", "m2"), source="api")


async def seeded(store: PostgresStore) -> tuple[Account, Subscription, ApiKey]:
    account = Account("acct_1", "Acme", T0, 0)
    await store.create_account(account)
    await store.upsert_plan(PLAN)
    sub = Subscription("sub_1", account.id, PLAN.slug, "active", T0, T0, T0 + 30 * 86400)
    await store.create_subscription(sub)
    key = ApiKey("key_1", account.id, "subscription", "main", "sk_ab", T0, sub.id, metadata={"team": "x"},
                 end_user="u1")
    await store.create_api_key(key, "hash_1")
    return account, sub, key


def test_the_account_model_round_trips(pg_url, tmp_path):
    async def body(store: PostgresStore) -> None:
        account, sub, key = await seeded(store)
        assert await store.get_account(account.id) == account
        assert await store.get_plan("pro") == PLAN
        assert await store.list_plans() == [PLAN]
        assert await store.get_subscription(sub.id) == sub
        assert await store.list_subscriptions(account.id) == [sub]
        assert await store.get_api_key(key.id) == key
        ctx = await store.find_key_context("hash_1")
        assert ctx is not None and (ctx.key, ctx.account, ctx.subscription, ctx.plan) == (key, account, sub, PLAN)
        assert ctx.secret_valid_until is None
        assert await store.find_key_context("nope") is None

        granted = await store.add_credits(account.id, 7_000_000_000, "welcome", T0 + 1)
        assert granted.credits_granted == 7_000_000_000
        grants = await store.list_credit_grants(account.id)
        assert [(g.amount, g.note) for g in grants] == [(7_000_000_000, "welcome")]

        mkey = ManagementKey("mk_1", account.id, "ops", "mk_ab", T0)
        await store.create_management_key(mkey, "mhash")
        assert await store.find_management_key("mhash") == mkey
        await store.revoke_management_key("mk_1", T0 + 5)
        assert (await store.list_management_keys(account.id))[0].revoked_at == T0 + 5

        await store.set_meta("k", "v")
        await store.set_meta("k", "w")
        assert await store.get_meta("k") == "w"
        assert await store.get_meta("missing") is None

    run(pg_url, tmp_path, body)


def test_pages_follow_created_at_then_id(pg_url, tmp_path):
    async def body(store: PostgresStore) -> None:
        for n in range(5):
            await store.create_account(Account(f"a{n}", f"n{n}", T0 + n // 2))
        keys = [(ApiKey(f"k{n}", "a0", "payg", f"k{n}", "sk_x", T0 + n % 2, end_user="u" if n % 2 else None),
                 f"h{n}") for n in range(6)]
        await store.create_api_keys(keys)
        first = await store.list_accounts(limit=2)
        rest = await store.list_accounts(after=first[-1].id)
        assert [a.id for a in first + rest] == ["a0", "a1", "a2", "a3", "a4"]
        page = await store.list_api_keys("a0", after="k2", limit=2)
        assert [k.id for k in page] == ["k4", "k1"]
        assert [k.id for k in await store.list_end_user_keys("a0", "u")] == ["k1", "k3", "k5"]
        with pytest.raises(UnknownCursor):
            await store.list_api_keys("a1", after="k2")
        found = await store.find_key_contexts(["h0", "h5", "zzz", "h0"])
        assert sorted(found) == ["h0", "h5"]
        assert found["h0"].account is found["h5"].account  # one account record for its keys

    run(pg_url, tmp_path, body)


def test_plan_edits_and_retirement(pg_url, tmp_path):
    async def body(store: PostgresStore) -> None:
        assert await store.insert_plan(PLAN)
        assert not await store.insert_plan(replace(PLAN, name="Other"))
        updated = await store.update_plan("pro", {"name": "Pro 2", "models": ("m3",)}, source="api")
        assert updated is not None and updated.name == "Pro 2" and updated.models == ("m3",)
        assert await store.update_plan("pro", {"name": "x"}, source="config") is None
        retired = await store.set_plan_retired("pro", T0)
        assert retired is not None and retired.retired_at == T0
        again = await store.set_plan_retired("pro", T0 + 9)
        assert again is not None and again.retired_at == T0  # the first retirement is kept
        await store.upsert_plan(replace(PLAN, name="Pro 3"))  # config reload keeps the retirement
        kept = await store.get_plan("pro")
        assert kept is not None and kept.retired_at == T0 and kept.name == "Pro 3"
        back = await store.set_plan_retired("pro", None)
        assert back is not None and back.retired_at is None
        assert await store.set_plan_retired("none", T0) is None

    run(pg_url, tmp_path, body)


def test_two_concurrent_rotations_leave_one_chain(pg_url, tmp_path):
    """Both rotations happen, one after the other: the final secret's previous one is the other rotation's new
    secret, and the original secret stops working."""
    async def body(store: PostgresStore) -> None:
        await seeded(store)
        results = await asyncio.gather(
            store.rotate_api_key("key_1", "hash_a", "sk_a", T0 + 10, T0 + 100),
            store.rotate_api_key("key_1", "hash_b", "sk_b", T0 + 10, T0 + 100))
        assert results == [True, True]
        found = await store.find_key_contexts(["hash_1", "hash_a", "hash_b"])
        assert "hash_1" not in found
        current = [h for h, ctx in found.items() if ctx.secret_valid_until is None]
        previous = [h for h, ctx in found.items() if ctx.secret_valid_until == T0 + 100]
        assert len(current) == 1 and len(previous) == 1 and {*current, *previous} == {"hash_a", "hash_b"}
        await store.revoke_api_key("key_1", T0 + 20)
        assert not await store.rotate_api_key("key_1", "hash_c", "sk_c", T0 + 30, None)

    run(pg_url, tmp_path, body)


def test_keep_one_management_key_holds_under_concurrent_revocations(pg_url, tmp_path):
    async def body(store: PostgresStore) -> None:
        await store.create_account(Account("acct_1", "Acme", T0))
        for n in range(2):
            await store.create_management_key(ManagementKey(f"mk_{n}", "acct_1", "ops", "mk_x", T0), f"mh{n}")
        done = await asyncio.gather(*(store.revoke_management_key_of("acct_1", f"mk_{n}", T0 + 1, keep_one=True)
                                      for n in range(2)))
        assert sorted(done) == [False, True]
        active = [k for k in await store.list_management_keys("acct_1") if k.revoked_at is None]
        assert len(active) == 1

    run(pg_url, tmp_path, body)


def test_modify_subscription_is_atomic_and_a_refusal_writes_nothing(pg_url, tmp_path):
    async def body(store: PostgresStore) -> None:
        _, sub, _ = await seeded(store)

        def extend(s: Subscription) -> Subscription:
            return replace(s, current_period_end=s.current_period_end + 100)

        await asyncio.gather(*(store.modify_subscription(sub.id, extend) for _ in range(8)))
        now = await store.get_subscription(sub.id)
        assert now is not None and now.current_period_end == sub.current_period_end + 800  # no lost update

        def refuse(s: Subscription) -> Subscription:
            raise Conflict("no")

        with pytest.raises(Conflict):
            await store.modify_subscription(sub.id, refuse)
        assert await store.get_subscription(sub.id) == now
        assert await store.modify_subscription("missing", extend) is None

    run(pg_url, tmp_path, body)


def test_a_bulk_key_import_is_one_transaction(pg_url, tmp_path):
    async def body(store: PostgresStore) -> None:
        await store.create_account(Account("acct_1", "Acme", T0))
        keys = [(ApiKey(f"k{n}", "acct_1", "payg", "k", "sk_x", T0), f"h{n}") for n in range(3000)]
        keys.append((ApiKey("dup", "acct_1", "payg", "k", "sk_x", T0), "h0"))  # a hash taken: the whole import fails
        with pytest.raises(asyncpg.UniqueViolationError):
            await store.create_api_keys(keys)
        assert await store.list_api_keys("acct_1") == []
        await store.create_api_keys(keys[:-1])
        assert len(await store.find_key_contexts([f"h{n}" for n in range(0, 3000, 7)])) == len(range(0, 3000, 7))

    run(pg_url, tmp_path, body)


def test_processes_starting_at_once_migrate_once(pg_url, tmp_path):
    """Workers of `--workers N` open one fresh database together: one migrates, the others wait and find it done."""
    async def main() -> list[int]:
        stores = [PostgresStore(pg_url, journal_dir=tmp_path / "journal") for _ in range(4)]
        await asyncio.gather(*(store.open() for store in stores))
        try:
            assert sorted(store._slot.number for store in stores if store._slot is not None) == [0, 1, 2, 3]
            return await stores[0]._call(lambda c: c.fetch("SELECT version FROM schema_migrations"))
        finally:
            await asyncio.gather(*(store.close() for store in stores))

    # Each migration applied once: the baseline (SQLite's 0001-0013 in one) and every one after it.
    assert [row[0] for row in asyncio.run(main())] == [version for version, _ in migrations()]
