"""The account lifecycle with a real store and a fake clock: rotation graces end on the second, both secrets
of a key in its grace leave the cache together, renewals and extensions move the period as documented,
management keys never all go, retired plans take no new subscriptions, and an older database upgrades."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tollgate.accounts.auth import ConsumptionAuth
from tollgate.accounts.key_cache import KeyCache
from tollgate.accounts.service import AccountService
from tollgate.domain.accounts import Account, ApiKey, KeyContext, Plan
from tollgate.domain.refusals import Conflict, Invalid, KeyRefused, NotFound
from tollgate.store import migrate as m
from tollgate.store.sqlite import SQLiteStore

NOW = 1_800_000_000
DAY = 86400
PLAN = Plan("p", "P", 0, 30, 18000, 10**8, 60, 1000)


class World:
    def __init__(self, tmp_path) -> None:
        self.now = [float(NOW)]
        self.store = SQLiteStore(f"sqlite:///{tmp_path / 'life.db'}")
        self.accounts = AccountService(self.store, clock=lambda: self.now[0])
        self.auth = ConsumptionAuth(self.store, clock=lambda: self.now[0])

    async def __aenter__(self) -> World:
        await self.store.open()
        await self.store.upsert_plan(PLAN)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.store.close()

    async def key(self) -> tuple[str, str, str]:
        """(account id, key id, secret) of a new account's key on a new subscription of plan p."""
        account, _, _ = await self.accounts.create_account("a")
        sub = await self.accounts.grant_subscription(account.id, "p")
        key, secret = await self.accounts.create_subscription_key(account.id, "k", sub.id)
        return account.id, key.id, secret


async def refusal(auth: ConsumptionAuth, secret: str) -> str:
    with pytest.raises(KeyRefused) as info:
        await auth.authenticate(secret)
    return info.value.reason


def run(coro) -> None:
    asyncio.run(coro)


def test_the_old_secret_works_until_the_grace_ends_and_the_new_one_at_once(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            account_id, key_id, old = await w.key()
            assert (await w.auth.authenticate(old)).key.id == key_id  # cached now
            key, new = await w.accounts.rotate_key(account_id, key_id, 60)
            assert (key.id, key.rotated_at, key.previous_valid_until) == (key_id, NOW, NOW + 60)
            assert new != old and key.prefix == new[:10] + "…"
            assert (await w.auth.authenticate(new)).key.id == key_id
            ctx = await w.auth.authenticate(old)
            assert (ctx.key.id, ctx.secret_valid_until) == (key_id, NOW + 60)
            w.now[0] = NOW + 59
            assert (await w.auth.authenticate(old)).key.id == key_id
            w.now[0] = NOW + 60  # no change in the store: the cached context itself knows when it ends
            assert await refusal(w.auth, old) == KeyRefused.INVALID
            assert (await w.auth.authenticate(new)).key.id == key_id
            # A second rotation ends the first one's grace at once, whatever it had left.
            _, newer = await w.accounts.rotate_key(account_id, key_id, 3600)
            assert await refusal(w.auth, old) == KeyRefused.INVALID
            assert (await w.auth.authenticate(newer)).key.id == key_id
            assert (await w.auth.authenticate(new)).secret_valid_until == NOW + 60 + 3600
            # Revoking the key refuses both of its secrets on their next request.
            await w.accounts.revoke_key(account_id, key_id)
            assert await refusal(w.auth, new) == KeyRefused.REVOKED
            assert await refusal(w.auth, newer) == KeyRefused.REVOKED
            with pytest.raises(Conflict):
                await w.accounts.rotate_key(account_id, key_id, 60)

    run(main())


def test_no_grace_refuses_the_old_secret_at_once_and_graces_are_bounded(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            account_id, key_id, old = await w.key()
            await w.auth.authenticate(old)
            _, new = await w.accounts.rotate_key(account_id, key_id, 0)
            assert await refusal(w.auth, old) == KeyRefused.INVALID
            assert (await w.auth.authenticate(new)).secret_valid_until is None
            for grace in (-1, 7 * DAY + 1, "1h", True, 1.5):
                with pytest.raises(Invalid):
                    await w.accounts.rotate_key(account_id, key_id, grace)
            other, _, _ = await w.key()
            with pytest.raises(NotFound):  # another account's key
                await w.accounts.rotate_key(other, key_id, 60)

    run(main())


def test_a_change_to_a_key_drops_both_of_its_cached_secrets(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            account_id, key_id, old = await w.key()
            _, new = await w.accounts.rotate_key(account_id, key_id, 600)
            assert (await w.auth.authenticate(old)).key.end_user is None
            assert (await w.auth.authenticate(new)).key.end_user is None
            assert w.auth.cache.apply("key", "key_none") == 0
            await w.accounts.update_key(account_id, key_id, {"end_user": "u-1", "metadata": {"plan": "gold"}})
            for secret in (old, new):  # both re-read: neither kept the context from before the change
                ctx = await w.auth.authenticate(secret)
                assert (ctx.key.end_user, ctx.key.metadata) == ("u-1", {"plan": "gold"})
            assert w.auth.cache.apply("key", key_id) == 2 and len(w.auth.cache) == 0

    run(main())


def test_the_cache_tracks_every_cached_secret_of_a_key_through_evictions():
    account = Account("a", "A", 0)
    ctx = {name: KeyContext(ApiKey(key_id, "a", "credit", "k", "p", 0), account, None, None)
           for name, key_id in (("old", "k1"), ("new", "k1"), ("other", "k2"))}
    cache = KeyCache(2)
    cache.put("old", ctx["old"])
    cache.put("new", ctx["new"])
    assert cache.apply("key", "k1") == 2 and len(cache) == 0  # both secrets of the key in its grace
    cache.put("old", ctx["old"])
    cache.put("new", ctx["new"])
    cache.put("other", ctx["other"])  # evicts "old", the least recently used: "new" is still k1's
    assert cache.peek("old") is None and cache.apply("key", "k1") == 1 and cache.peek("new") is None
    cache.put("new", ctx["new"])
    cache.put("new", ctx["new"])  # put again: still one secret, not two
    assert cache.apply("key", "k1") == 1 and cache.apply("key", "k1") == 0
    assert cache.apply("key", "k2") == 1 and len(cache) == 0


def test_renew_extend_and_uncancel_move_the_period_as_documented(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            account, _, _ = await w.accounts.create_account("a")
            sub = await w.accounts.grant_subscription(account.id, "p", 10)
            end = NOW + 10 * DAY
            await w.accounts.cancel_subscription(account.id, sub.id)
            renewed = await w.accounts.renew_subscription(account.id, sub.id)  # the plan's 30 days, after the end
            assert (renewed.status, renewed.cancel_at_period_end) == ("active", False)
            assert (renewed.current_period_start, renewed.current_period_end) == (NOW, end + 30 * DAY)
            extended = await w.accounts.extend_subscription(None, sub.id, 5)
            assert extended.current_period_end == end + 35 * DAY
            await w.accounts.cancel_subscription(None, sub.id)
            back = await w.accounts.uncancel_subscription(None, sub.id)
            assert (back.status, back.cancel_at_period_end, back.current_period_end) == ("active", False, end + 35 * DAY)

            await w.accounts.expire_subscription(None, sub.id)
            w.now[0] = NOW + 100
            with pytest.raises(Conflict):
                await w.accounts.extend_subscription(None, sub.id, 5)
            with pytest.raises(Conflict):
                await w.accounts.uncancel_subscription(None, sub.id)
            again = await w.accounts.renew_subscription(None, sub.id, 7)  # ended: a new period from now
            assert (again.status, again.current_period_start, again.current_period_end) == \
                ("active", NOW + 100, NOW + 100 + 7 * DAY)
            assert await w.store.get_subscription(sub.id) == again
            with pytest.raises(Invalid) as info:  # at most 100 years ahead, whatever the number of renewals
                for _ in range(20):
                    await w.accounts.extend_subscription(None, sub.id, 3650)
            assert info.value.param == "days"
            other, _, _ = await w.accounts.create_account("b")
            with pytest.raises(NotFound):
                await w.accounts.renew_subscription(other.id, sub.id)

    run(main())


def test_an_account_keeps_a_working_management_key_unless_forced(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            account, first, _ = await w.accounts.create_account("a")
            with pytest.raises(Conflict):
                await w.accounts.revoke_management_key(account.id, first.id)
            second, _ = await w.accounts.create_management_key(account.id, "second")
            assert (await w.accounts.revoke_management_key(account.id, first.id)).revoked_at == NOW
            assert (await w.accounts.revoke_management_key(account.id, first.id)).revoked_at == NOW  # idempotent
            with pytest.raises(Conflict):
                await w.accounts.revoke_management_key(account.id, second.id)
            other, _, _ = await w.accounts.create_account("b")
            with pytest.raises(NotFound):
                await w.accounts.revoke_management_key(other.id, second.id, force=True)
            assert (await w.accounts.revoke_management_key(account.id, second.id, force=True)).revoked_at == NOW
            assert all(k.revoked_at for k in await w.accounts.management_keys(account.id))

    run(main())


def test_plans_are_created_once_changed_field_by_field_and_retired(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            plan = await w.accounts.create_plan(Plan("mini", "Mini", 0, 30, 3600, 10**7, 10, 1000, source="x"))
            assert plan.source == "operator"
            with pytest.raises(Conflict):
                await w.accounts.create_plan(Plan("mini", "Other", 0, 30, 3600, 1, 1, 1))
            with pytest.raises(Invalid):
                await w.accounts.create_plan(Plan("a/b", "Slash", 0, 30, 3600, 1, 1, 1))
            changed = await w.accounts.update_plan("mini", {"rpm": 7, "models": ("m1",)})
            assert (changed.rpm, changed.models, changed.tpm, changed.name) == (7, ("m1",), 1000, "Mini")
            assert (await w.accounts.update_plan("mini", {"models": None})).models is None
            with pytest.raises(Invalid) as info:
                await w.accounts.update_plan("mini", {"window": 0})
            assert info.value.param == "window"
            with pytest.raises(Conflict):  # a config plan is changed in the config file
                await w.accounts.update_plan("p", {"rpm": 1})

            account, _, _ = await w.accounts.create_account("a")
            running = await w.accounts.grant_subscription(account.id, "mini")
            retired = await w.accounts.retire_plan("mini")
            assert retired.retired_at == NOW and (await w.accounts.retire_plan("mini")).retired_at == NOW
            with pytest.raises(Conflict) as refused:
                await w.accounts.grant_subscription(account.id, "mini")
            assert "retired" in refused.value.message
            renewed = await w.accounts.renew_subscription(None, running.id)  # existing subscriptions run on
            assert renewed.current_period_end == running.current_period_end + 30 * DAY
            await w.store.upsert_plan(PLAN)  # a config sync at start keeps a retirement
            await w.accounts.retire_plan("p")
            await w.store.upsert_plan(PLAN)
            assert (await w.accounts.plan("p")).retired
            assert not (await w.accounts.retire_plan("mini", retired=False)).retired
            assert (await w.accounts.grant_subscription(account.id, "mini")).plan_slug == "mini"

    run(main())


def test_an_older_database_gets_the_new_columns_and_keeps_its_keys(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in m.migrations():
        if version >= 10:
            break
        for statement in m.split_sql(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO accounts VALUES ('acct_a', 'A', 1, 0)")
    conn.execute("INSERT INTO plans VALUES ('p', 'P', 0, 30, 18000, 100000000, 60, 1000, NULL, 'config')")
    conn.execute("INSERT INTO api_keys (id, account_id, type, name, key_hash, prefix, created_at)"
                 " VALUES ('key_a', 'acct_a', 'credit', 'k', 'hash-a', 'sk_x', 1)")
    conn.close()

    async def main():
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        try:
            key = await store.get_api_key("key_a")
            assert (key.name, key.rotated_at, key.previous_valid_until) == ("k", None, None)
            assert (await store.get_plan("p")).retired_at is None
            assert await store.rotate_api_key("key_a", "hash-b", "sk_y", 5, 10)
            found = await store.find_key_contexts(["hash-a", "hash-b", "hash-c"])
            assert (found["hash-a"].secret_valid_until, found["hash-b"].secret_valid_until) == (10, None)
            assert "hash-c" not in found
            changes = await store.changes_since(0)  # the rotation is in the change log, as every key change
            assert ("key", "key_a") in changes.items
        finally:
            await store.close()

    run(main())
