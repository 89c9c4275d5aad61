"""Key checks on the request path, with a real store and a fake clock: periods end on time."""

import asyncio

import pytest

from tollgate.accounts.auth import ConsumptionAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.accounts import Plan
from tollgate.domain.refusals import KeyRefused
from tollgate.store.sqlite import SQLiteStore


def test_keys_stop_working_the_moment_the_period_ends(tmp_path):
    async def main():
        now = [1_800_000_000.0]
        store = SQLiteStore(f"sqlite:///{tmp_path / 'a.db'}")
        await store.open()
        await store.upsert_plan(Plan("p", "P", 0, 30, 18000, 10**8, 60, 1000))
        accounts = AccountService(store, clock=lambda: now[0])
        auth = ConsumptionAuth(store, clock=lambda: now[0])
        account, _, _ = await accounts.create_account("a")
        sub = await accounts.grant_subscription(account.id, "p", 2)
        _, secret = await accounts.create_subscription_key(account.id, "k", sub.id)
        await accounts.cancel_subscription(account.id, sub.id)
        now[0] = sub.current_period_end - 1  # canceled, but the period runs to its end
        assert (await auth.authenticate(secret)).subscription.status == "canceled"
        now[0] = sub.current_period_end
        with pytest.raises(KeyRefused) as info:
            await auth.authenticate(secret)
        assert info.value.reason == KeyRefused.SUBSCRIPTION_EXPIRED
        for bad in (None, "", "sk_unknown", "mk_" + "x" * 40, "sk_" + "y" * 500):
            with pytest.raises(KeyRefused) as info:
                await auth.authenticate(bad)
            assert info.value.reason == KeyRefused.INVALID
        await store.close()

    asyncio.run(main())
