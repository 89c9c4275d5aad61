"""Key checks on the request path, with a real store and a fake clock: periods end on time."""

import asyncio

import pytest

from tollgate.accounts.models import Plan
from tollgate.accounts.service import AccountService
from tollgate.api.auth import ConsumptionAuth
from tollgate.api.errors import APIError
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
        with pytest.raises(APIError) as info:
            await auth.authenticate(secret)
        assert (info.value.status, info.value.code) == (403, "subscription_expired")
        for bad in (None, "", "sk_unknown", "mk_" + "x" * 40, "sk_" + "y" * 500):
            with pytest.raises(APIError) as info:
                await auth.authenticate(bad)
            assert (info.value.status, info.value.code) == (401, "invalid_api_key")
        await store.close()

    asyncio.run(main())
