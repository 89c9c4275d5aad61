"""Operator and account-owner actions on the account model, shared by the HTTP APIs and the CLI.

Every method that takes an `account_id` scopes its lookups to that account: an
object of another account is reported as not found, never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from tollgate.accounts.checks import bounded, checked_name
from tollgate.accounts.lifecycle import LifecycleActions
from tollgate.domain.accounts import Account, ApiKey, ManagementKey, Plan, Subscription
from tollgate.domain.bounds import (
    check_budget,
    check_credits_total,
    check_end_user,
    check_metadata,
    check_period_days,
    check_window,
)
from tollgate.domain.refusals import Conflict, Invalid, NotFound
from tollgate.domain.secrets import (
    CONSUMPTION_PREFIX,
    MANAGEMENT_PREFIX,
    display_prefix,
    hash_secret,
    new_id,
    new_secret,
)
from tollgate.store.base import Store

# The account model's field checks (`tollgate.accounts.checks`), by their short names here.
_name = checked_name
_bounded = bounded


class AccountService(LifecycleActions):
    """Every action on the account model; the lifecycle ones (rotation, renewals, retirement...) are
    `LifecycleActions`'."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())

    # -- accounts -----------------------------------------------------------

    async def create_account(self, name: object) -> tuple[Account, ManagementKey, str]:
        account = Account(id=new_id("acct"), name=_name(name), created_at=self._now())
        await self.store.create_account(account)
        key, secret = await self.create_management_key(account.id, "default")
        return account, key, secret

    async def account(self, account_id: str) -> Account:
        account = await self.store.get_account(account_id)
        if account is None:
            raise NotFound(f"no account {account_id!r}")
        return account

    async def list_accounts(self) -> list[Account]:
        return await self.store.list_accounts()

    async def create_management_key(self, account_id: str, name: object = "default") -> tuple[ManagementKey, str]:
        await self.account(account_id)
        secret = new_secret(MANAGEMENT_PREFIX)
        key = ManagementKey(
            id=new_id("mkey"), account_id=account_id, name=_name(name), prefix=display_prefix(secret),
            created_at=self._now(),
        )
        await self.store.create_management_key(key, hash_secret(secret))
        return key, secret

    async def grant_credits(self, account_id: str, amount: int, note: str | None = None) -> Account:
        if amount <= 0:
            raise Invalid("amount must be a positive number of dollars", param="amount")
        _bounded(amount, check_budget, "amount")
        account = await self.account(account_id)
        _bounded(account.credits_granted + amount, check_credits_total, "amount")
        return await self.store.add_credits(account_id, amount, note, self._now())

    # -- plans --------------------------------------------------------------

    async def list_plans(self) -> list[Plan]:
        return await self.store.list_plans()

    async def plan(self, slug: str) -> Plan:
        plan = await self.store.get_plan(slug)
        if plan is None:
            raise NotFound(f"no plan {slug!r}", param="plan")
        return plan

    # -- subscriptions ------------------------------------------------------

    async def grant_subscription(self, account_id: str, plan_slug: object, period_days: object = None) -> Subscription:
        if not isinstance(plan_slug, str) or not plan_slug:
            raise Invalid("plan must be a plan slug such as \"standard\"", param="plan")
        await self.account(account_id)
        plan = await self.plan(plan_slug)
        if plan.retired:
            raise Conflict(f"plan {plan.slug!r} is retired: it takes no new subscriptions", param="plan")
        if period_days is None:
            period_days = plan.period_days
        _bounded(period_days, check_period_days, "period_days")
        now = self._now()
        subscription = Subscription(
            id=new_id("sub"), account_id=account_id, plan_slug=plan.slug, status="active", created_at=now,
            current_period_start=now, current_period_end=now + period_days * 86400,
        )
        await self.store.create_subscription(subscription)
        return subscription

    async def subscription(self, account_id: str | None, subscription_id: str) -> Subscription:
        subscription = await self.store.get_subscription(subscription_id)
        if subscription is None or (account_id is not None and subscription.account_id != account_id):
            raise NotFound(f"no subscription {subscription_id!r}", param="subscriptionId")
        return subscription

    async def subscriptions(self, account_id: str) -> list[Subscription]:
        return await self.store.list_subscriptions(account_id)

    async def cancel_subscription(self, account_id: str | None, subscription_id: str) -> Subscription:
        """Cancel at period end: the pool keeps working until `current_period_end`."""
        subscription = await self.subscription(account_id, subscription_id)
        if subscription.effective_status(self.clock()) == "expired":
            raise Conflict("the subscription has already expired")
        subscription = replace(subscription, status="canceled", cancel_at_period_end=True)
        await self.store.update_subscription(subscription)
        return subscription

    async def expire_subscription(self, account_id: str | None, subscription_id: str) -> Subscription:
        """Expire now: every key on the pool is refused from the very next request."""
        subscription = await self.subscription(account_id, subscription_id)
        now = self._now()
        end = min(subscription.current_period_end, now)
        subscription = replace(subscription, status="expired", current_period_end=end)
        await self.store.update_subscription(subscription)
        return subscription

    # -- consumption keys ---------------------------------------------------

    async def create_subscription_key(
        self,
        account_id: str,
        name: object,
        subscription_id: object,
        budget_limit: int | None = None,
        budget_window: int | None = None,
        end_user: object = None,
        metadata: object = None,
    ) -> tuple[ApiKey, str]:
        if not isinstance(subscription_id, str) or not subscription_id:
            raise Invalid("subscriptionId must be the id of one of your subscriptions", param="subscriptionId")
        subscription = await self.subscription(account_id, subscription_id)
        if not subscription.is_usable(self.clock()):
            raise Conflict("the subscription has expired; keys can no longer be added", param="subscriptionId")
        return await self._create_key(
            account_id, "subscription", name, subscription.id, budget_limit, budget_window, end_user, metadata
        )

    async def create_credit_key(
        self, account_id: str, name: object, end_user: object = None, metadata: object = None,
        budget_limit: int | None = None, budget_window: int | None = None,
    ) -> tuple[ApiKey, str]:
        await self.account(account_id)
        return await self._create_key(account_id, "credit", name, None, budget_limit, budget_window, end_user, metadata)

    async def _create_key(
        self, account_id: str, key_type: str, name: object, subscription_id: str | None,
        budget_limit: int | None, budget_window: int | None, end_user: object, metadata: object,
    ) -> tuple[ApiKey, str]:
        if (budget_limit is None) != (budget_window is None):
            raise Invalid("a key budget needs both a limit and a window", param="budget")
        if budget_limit is not None:
            if budget_limit <= 0:
                raise Invalid("budget limit must be more than zero", param="budget")
            _bounded(budget_limit, check_budget, "budget", "budget limit")
            _bounded(budget_window, check_window, "budget", "budget window")
        if end_user is not None:
            _bounded(end_user, check_end_user, "endUser")
        if metadata is not None:
            _bounded(metadata, check_metadata, "metadata")
        secret = new_secret(CONSUMPTION_PREFIX)
        key = ApiKey(
            id=new_id("key"), account_id=account_id, type=key_type, name=_name(name), prefix=display_prefix(secret),
            created_at=self._now(), subscription_id=subscription_id, budget_limit=budget_limit,
            budget_window=budget_window, end_user=end_user, metadata=metadata,
        )
        await self.store.create_api_key(key, hash_secret(secret))
        return key, secret

    async def key(self, account_id: str, key_id: str) -> ApiKey:
        key = await self.store.get_api_key(key_id)
        if key is None or key.account_id != account_id:
            raise NotFound(f"no key {key_id!r}")
        return key

    async def keys(self, account_id: str) -> list[ApiKey]:
        return await self.store.list_api_keys(account_id)

    async def revoke_key(self, account_id: str, key_id: str) -> ApiKey:
        key = await self.key(account_id, key_id)
        if key.revoked_at is None:
            await self.store.revoke_api_key(key.id, self._now())
        return await self.key(account_id, key_id)
