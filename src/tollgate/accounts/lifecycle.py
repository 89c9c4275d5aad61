"""The account lifecycle: key rotation, management keys, plan edits and retirement, renewals, credit history,
end-user labels. Shared by the HTTP APIs and the CLI, as the rest of `AccountService` (which inherits it).

The rules, in one place:
- Rotating a key gives it a new secret under the same key id (its budget, pool, usage and limits stay
  its own); the old secret keeps working for `grace` seconds (0 to 7 days), then is refused. Rotating
  again during a grace ends the earlier secret's grace at once: a key has at most two working secrets.
- An account keeps at least one working management key: revoking its last active one is refused,
  unless the operator forces it (to lock a compromised account out; the operator can issue a new one).
  Owners may revoke the key they call with, as long as another active one remains.
- A plan in the config file is edited there; operator plans are created once (a slug in use is a
  conflict) and changed field by field. A retired plan takes no new subscriptions; the subscriptions
  it has keep running, and can be renewed, extended and un-canceled.
- Renewing adds one period after the current end (the period start stays), or, once the subscription
  has ended (expired by time or by the operator), starts a new period now; either way it is active
  again and no longer cancels at its end. Extending adds days to a running subscription. Un-canceling
  takes back a cancellation while the period runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tollgate.accounts.checks import bounded, checked_name, checked_slug
from tollgate.domain.accounts import Account, ApiKey, CreditGrant, ManagementKey, Plan, Subscription
from tollgate.domain.bounds import (
    check_budget,
    check_end_user,
    check_grace,
    check_metadata,
    check_period_days,
    check_period_end,
    check_rate,
    check_window,
)
from tollgate.domain.refusals import Conflict, Invalid, NotFound
from tollgate.domain.secrets import CONSUMPTION_PREFIX, display_prefix, hash_secret, new_secret
from tollgate.store.base import Store

DAY = 86400
GRACE_DEFAULT = 3600

# A plan's changeable fields and their bound checks (None: checked where it is read, as on creation).
PLAN_CHECKS: dict[str, Callable[[Any], Any] | None] = {
    "name": None, "price_monthly": check_budget, "period_days": check_period_days, "window": check_window,
    "budget_per_window": check_budget, "rpm": check_rate, "tpm": check_rate, "models": None,
}


class LifecycleActions:
    """Methods of `AccountService` (see the module docstring): it provides `store`, `_now`, `account`,
    `plan`, `subscription` and `key`."""

    store: Store
    _now: Callable[[], int]
    account: Callable[..., Any]
    plan: Callable[..., Any]
    subscription: Callable[..., Any]
    key: Callable[..., Any]

    # -- consumption keys ------------------------------------------------------

    async def _key_in_scope(self, account_id: str | None, key_id: str) -> ApiKey:
        """The key; None as `account_id` is the operator, who reaches every account's keys."""
        if account_id is not None:
            return await self.key(account_id, key_id)
        key = await self.store.get_api_key(key_id)
        if key is None:
            raise NotFound(f"no key {key_id!r}")
        return key

    async def rotate_key(self, account_id: str | None, key_id: str, grace: object = GRACE_DEFAULT) -> tuple[ApiKey, str]:
        """A new secret for the key (shown once); the old one works `grace` more seconds."""
        key = await self._key_in_scope(account_id, key_id)
        grace = bounded(grace, check_grace, "graceSeconds")
        if key.revoked_at is not None:
            raise Conflict("the key is revoked; a revoked key cannot be rotated")
        now = self._now()
        secret = new_secret(CONSUMPTION_PREFIX)
        if not await self.store.rotate_api_key(key.id, hash_secret(secret), display_prefix(secret), now,
                                               now + grace if grace else None):
            raise Conflict("the key is revoked; a revoked key cannot be rotated")  # revoked meanwhile
        return await self._key_in_scope(account_id, key.id), secret

    async def update_key(self, account_id: str | None, key_id: str, changes: dict[str, object]) -> ApiKey:
        """Change the key's name, end-user label or metadata (only those given; None clears the last two)."""
        key = await self._key_in_scope(account_id, key_id)
        checked: dict[str, object] = {}
        for field, value in changes.items():
            if field == "name":
                checked["name"] = checked_name(value)
            elif field == "end_user":
                checked["end_user"] = None if value is None else bounded(value, check_end_user, "endUser")
            elif field == "metadata":
                checked["metadata"] = None if value is None else bounded(value, check_metadata, "metadata")
            else:
                raise Invalid(f"{field} cannot be changed on a key", param=field)
        updated = await self.store.update_api_key(key.id, checked)
        if updated is None:
            raise NotFound(f"no key {key_id!r}")
        return updated

    async def end_user_keys(self, account_id: str, end_user: object, after: str | None = None,
                            limit: int | None = None) -> list[ApiKey]:
        """The account's keys labelled `end_user` (a page, as `Store.list_api_keys`)."""
        label = bounded(end_user, check_end_user, "endUser")
        return await self.store.list_end_user_keys(account_id, label, after=after, limit=limit)

    # -- management keys ---------------------------------------------------------

    async def management_keys(self, account_id: str) -> list[ManagementKey]:
        await self.account(account_id)
        return await self.store.list_management_keys(account_id)

    async def revoke_management_key(self, account_id: str, key_id: str, *, force: bool = False) -> ManagementKey:
        """Revoke one of the account's management keys; its last active one only with `force` (operator)."""
        keys = {k.id: k for k in await self.management_keys(account_id)}
        key = keys.get(key_id)
        if key is None:
            raise NotFound(f"no management key {key_id!r}")
        if key.revoked_at is None and not await self.store.revoke_management_key_of(
                account_id, key.id, self._now(), keep_one=not force):
            current = {k.id: k for k in await self.store.list_management_keys(account_id)}[key.id]
            if current.revoked_at is None:
                raise Conflict("this is the account's last active management key: create another one first "
                               "(an operator may force it, which locks the account out of the management API)")
        return {k.id: k for k in await self.store.list_management_keys(account_id)}[key.id]

    # -- plans --------------------------------------------------------------------

    def _check_plan(self, plan: Plan) -> None:
        for field, check in PLAN_CHECKS.items():
            if check is not None:
                bounded(getattr(plan, field), check, field)

    async def create_plan(self, plan: Plan) -> Plan:
        """Create an operator plan, every number within `tollgate.domain.bounds`; a slug in use is a conflict."""
        checked_slug(plan.slug)
        self._check_plan(plan)
        plan = replace(plan, source="operator", name=checked_name(plan.name), retired_at=None)
        if not await self.store.insert_plan(plan):
            existing = await self.store.get_plan(plan.slug)
            where = "the config file; change it there" if existing and existing.source == "config" else \
                f"this gateway; change it with PATCH /admin/plans/{plan.slug} (tollgate plans update)"
            raise Conflict(f"plan {plan.slug!r} exists already, in {where}", param="slug")
        return plan

    async def update_plan(self, slug: str, changes: dict[str, Any]) -> Plan:
        """Change only the given fields (Plan field names) of an operator plan, checked as on creation."""
        existing = await self.plan(slug)
        if existing.source == "config":
            raise Conflict(f"plan {slug!r} is defined in the config file; change it there", param="slug")
        for field, value in changes.items():
            if field not in PLAN_CHECKS:
                raise Invalid(f"{field} cannot be changed on a plan", param=field)
            check = PLAN_CHECKS[field]
            if check is not None:
                bounded(value, check, field)
        if "name" in changes:
            changes = {**changes, "name": checked_name(changes["name"])}
        plan = await self.store.update_plan(slug, changes, "operator")
        if plan is None:
            raise NotFound(f"no plan {slug!r}", param="plan")
        return plan

    async def retire_plan(self, slug: str, retired: bool = True) -> Plan:
        """Retire the plan (no new subscriptions; existing ones run on), or with False take that back."""
        await self.plan(slug)
        plan = await self.store.set_plan_retired(slug, self._now() if retired else None)
        if plan is None:
            raise NotFound(f"no plan {slug!r}", param="plan")
        return plan

    # -- subscriptions -------------------------------------------------------------

    async def _modify(self, account_id: str | None, subscription_id: str,
                      change: Callable[[Subscription], Subscription]) -> Subscription:
        await self.subscription(account_id, subscription_id)  # scope: another account's is not found
        subscription = await self.store.modify_subscription(subscription_id, change)
        if subscription is None:
            raise NotFound(f"no subscription {subscription_id!r}", param="subscriptionId")
        return subscription

    @staticmethod
    def _ends(end: int, now: int, field: str) -> int:
        return bounded(end, lambda e: check_period_end(e, now), field, "the subscription")

    async def renew_subscription(self, account_id: str | None, subscription_id: str,
                                 period_days: object = None) -> Subscription:
        """One more period (the plan's, or `period_days`): after the current end, or from now once ended."""
        current = await self.subscription(account_id, subscription_id)
        if period_days is None:
            period_days = (await self.plan(current.plan_slug)).period_days
        days = bounded(period_days, check_period_days, "period_days")
        now = self._now()

        def renew(s: Subscription) -> Subscription:
            if s.is_usable(now):
                end = self._ends(s.current_period_end + days * DAY, now, "period_days")
                return replace(s, status="active", cancel_at_period_end=False, current_period_end=end)
            return replace(s, status="active", cancel_at_period_end=False, current_period_start=now,
                           current_period_end=self._ends(now + days * DAY, now, "period_days"))

        return await self._modify(account_id, subscription_id, renew)

    async def extend_subscription(self, account_id: str | None, subscription_id: str, days: object) -> Subscription:
        """`days` more in the current period of a running subscription."""
        days = bounded(days, check_period_days, "days")
        now = self._now()

        def extend(s: Subscription) -> Subscription:
            if not s.is_usable(now):
                raise Conflict("the subscription has ended; renew it to start a new period")
            return replace(s, current_period_end=self._ends(s.current_period_end + days * DAY, now, "days"))

        return await self._modify(account_id, subscription_id, extend)

    async def uncancel_subscription(self, account_id: str | None, subscription_id: str) -> Subscription:
        """Take back a cancellation at period end while the period runs (an active one is left as it is)."""
        now = self._now()

        def uncancel(s: Subscription) -> Subscription:
            if not s.is_usable(now):
                raise Conflict("the subscription has ended; renew it to start a new period")
            if s.status == "canceled" or s.cancel_at_period_end:
                return replace(s, status="active", cancel_at_period_end=False)
            return s

        return await self._modify(account_id, subscription_id, uncancel)

    # -- credits ----------------------------------------------------------------------

    async def credit_grants(self, account_id: str, after: int | None = None,
                            limit: int | None = None) -> tuple[Account, list[CreditGrant]]:
        """The account and a page of its credit grants, oldest first."""
        account = await self.account(account_id)
        return account, await self.store.list_credit_grants(account.id, after=after, limit=limit)
