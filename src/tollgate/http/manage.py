"""The management plane (`/api`, `mk_` keys): an account owner's subscriptions, keys, credits and usage.

Every handler resolves the caller's account from the management key first and
passes it to the account service, which reports other accounts' objects as not
found: a management key can never see or touch another account.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tollgate.accounts.auth import ManagementAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.accounts import ApiKey, Plan, Subscription
from tollgate.domain.pools import credit_pool, subscription_pool
from tollgate.domain.spend import report_of
from tollgate.domain.timestamps import iso
from tollgate.domain.usage import UsageRecord
from tollgate.http import fields, views
from tollgate.http.end_users import end_user_query, end_users_view
from tollgate.http.errors import APIError
from tollgate.http.manage_lifecycle import ManagementLifecycleAPI
from tollgate.http.request import Request, Router, Send
from tollgate.http.style import Style, envelope, money
from tollgate.ledger.protocol import BudgetLedger
from tollgate.store.base import Store, UnknownCursor

USAGE_DAYS_DEFAULT = 31
USAGE_DAYS_MAX = 366  # one call sums at most this much history (the database does, on its thread)

# The overhead report's JSON data: (records, plans, account id, since, until, key names by id,
# with per-step rows) -> data. The cost lab builds it; the composition root passes it in
# (the cost lab is an application above this layer).
OverheadReport = Callable[[list[UsageRecord], list[Plan], str, float, float, dict[str, str], bool], dict]


def ok(data: object) -> dict:
    return {"success": True, "data": data}


class ManagementAPI:
    def __init__(
        self, accounts: AccountService, store: Store, auth: ManagementAuth, ledger: BudgetLedger, max_body: int,
        clock: Callable[[], float] = time.time, overhead: OverheadReport | None = None, style: Style | None = None,
    ) -> None:
        self.style = style or Style()
        self.accounts = accounts
        self.store = store
        self.auth = auth
        self.ledger = ledger
        self.max_body = max_body
        self.clock = clock
        self.overhead_report = overhead

    def mount(self, router: Router) -> None:
        router.error_shape("/api/", envelope)
        router.add("GET", "/api/plans", self.plans)
        router.add("GET", "/api/billing/status", self.billing_status)
        router.add("POST", "/api/billing/cancel", self.cancel)
        router.add("GET", "/api/billing/credits", self.credits)
        router.add("GET", "/api/keys", self.list_keys)
        router.add("POST", "/api/keys", self.create_key)
        router.add("POST", "/api/keys/subscription", self.create_subscription_key)
        router.add("POST", "/api/keys/credit", self.create_credit_key)
        router.add("DELETE", "/api/keys/{key_id}", self.revoke_key)
        router.add("GET", "/api/usage", self.usage)
        router.add("GET", "/api/usage/{key_id}", self.key_usage)
        router.add("GET", "/api/analytics/overhead", self.overhead)
        ManagementLifecycleAPI(self.accounts, self.auth, self.ledger, self.max_body, self._key_views,
                               self.style).mount(router)

    async def _account_id(self, request: Request) -> str:
        return (await self.auth.authenticate(request.bearer())).account_id

    async def _pool_state(self, sub: Subscription) -> dict | None:
        plan = await self.accounts.store.get_plan(sub.plan_slug)
        if plan is None:
            return None
        state = await self.ledger.read(subscription_pool(sub, plan))
        return views.budget_view(state, usd=money)

    async def _credit_balance(self, account_id: str) -> int:
        account = await self.accounts.account(account_id)
        state = await self.ledger.read(credit_pool(account))
        return state.remaining

    async def plans(self, request: Request, send: Send) -> None:
        plans = await self.accounts.list_plans()
        await self.style.reply(request, send, 200, ok([views.plan_view(p) for p in plans]))

    async def billing_status(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        now = self.clock()
        keys = await self.accounts.keys(account_id)
        subs = []
        for sub in await self.accounts.subscriptions(account_id):
            sub_keys = [k for k in keys if k.subscription_id == sub.id]
            view = views.subscription_view(sub, sub_keys, now, None)
            if sub.is_usable(now):
                view["budget"] = await self._pool_state(sub)
            subs.append(view)
        balance = await self._credit_balance(account_id)
        await self.style.reply(request, send, 200, ok({
            "accountId": account_id, "subscriptions": subs, "creditBalance": money(balance),
            "creditBalanceNanos": balance, "creditKeyCount": sum(1 for k in keys if k.type == "credit" and k.is_active),
        }))

    async def cancel(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        body = fields.obj(await request.json(self.max_body))
        sub = await self.accounts.cancel_subscription(account_id, fields.string(body, "subscriptionId"))
        keys = [k for k in await self.accounts.keys(account_id) if k.subscription_id == sub.id]
        await self.style.reply(request, send, 200, ok(views.subscription_view(sub, keys, self.clock(), None)))

    async def credits(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        account = await self.accounts.account(account_id)
        balance = await self._credit_balance(account_id)
        await self.style.reply(request, send, 200, ok({
            "balance": money(balance), "balanceNanos": balance, "granted": money(account.credits_granted),
            "spent": money(account.credits_granted - balance),
        }))

    async def _key_views(self, account_id: str, keys: list[ApiKey]) -> list[dict]:
        now = self.clock()
        subs = {s.id: s for s in await self.accounts.subscriptions(account_id)}
        return [views.key_view(k, subs.get(k.subscription_id or ""), now) for k in keys]

    async def list_keys(self, request: Request, send: Send) -> None:
        """`GET /api/keys?limit=100&after=<key id>&endUser=<label>`: a page of the account's keys (of one end user
        when `endUser` is given), oldest first."""
        account_id = await self._account_id(request)
        limit, after = fields.page(request.query)
        end_user, _ = end_user_query(request.query)
        try:
            if end_user is not None:
                keys = await self.accounts.end_user_keys(account_id, end_user, after=after, limit=limit + 1)
            else:
                keys = await self.store.list_api_keys(account_id, after=after, limit=limit + 1)
        except UnknownCursor:
            raise fields.bad("after", "is not a key id of this account (use the nextCursor of the page before)") from None
        page, more = keys[:limit], len(keys) > limit
        await self.style.reply(request, send, 200, {**ok(await self._key_views(account_id, page)), "hasMore": more,
                                                    "nextCursor": page[-1].id if more else None})

    async def _created(self, request: Request, send: Send, account_id: str, key: ApiKey, secret: str) -> None:
        view = (await self._key_views(account_id, [key]))[0]
        view["apiKey"] = secret
        await self.style.reply(request, send, 201, ok(view))

    async def create_key(self, request: Request, send: Send) -> None:
        """`POST /api/keys`: a subscription key when `subscriptionId` is given, else a credit key."""
        account_id = await self._account_id(request)
        body = fields.obj(await request.json(self.max_body))
        key_type = body.get("type") or ("subscription" if body.get("subscriptionId") else "credit")
        if key_type not in ("subscription", "credit"):
            raise fields.bad("type", "must be \"subscription\" or \"credit\"")
        await self._create(request, send, account_id, body, key_type)

    async def create_subscription_key(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        await self._create(request, send, account_id, fields.obj(await request.json(self.max_body)), "subscription")

    async def create_credit_key(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        await self._create(request, send, account_id, fields.obj(await request.json(self.max_body)), "credit")

    async def _create(self, request: Request, send: Send, account_id: str, body: dict, key_type: str) -> None:
        name = fields.string(body, "name")
        limit, window = fields.key_budget(body)
        end_user, metadata = body.get("endUser"), body.get("metadata")
        if key_type == "subscription":
            key, secret = await self.accounts.create_subscription_key(
                account_id, name, fields.string(body, "subscriptionId"), limit, window, end_user, metadata)
        else:
            key, secret = await self.accounts.create_credit_key(account_id, name, end_user, metadata, limit, window)
        await self._created(request, send, account_id, key, secret)

    async def revoke_key(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        key = await self.accounts.revoke_key(account_id, request.params["key_id"])
        await self.style.reply(request, send, 200, ok((await self._key_views(account_id, [key]))[0]))

    def _range(self, request: Request) -> tuple[float, float | None]:
        """The report's [since, until): `days` back from now (31 by default), or `since`/`until`; at most a year."""
        return fields.time_range(request.query, self.clock(), USAGE_DAYS_DEFAULT, USAGE_DAYS_MAX)

    def _range_view(self, since: float, until: float | None) -> dict:
        return {"since": iso(since), "until": iso(self.clock() if until is None else until)}

    async def usage(self, request: Request, send: Send) -> None:
        """`GET /api/usage`: the account's spend in the range, per key and by day, week and month; with
        `endUser=<label>` only that end user's keys', with `groupBy=endUser` also per end user (`endUsers`).

        Summed by the database on its own thread; nothing here grows with the number of records.
        """
        account_id = await self._account_id(request)
        since, until = self._range(request)
        end_user, by_end_user = end_user_query(request.query)
        if end_user is not None:
            summary = await self.store.end_user_summary(account_id, end_user, since, until)
        else:
            summary = await self.store.usage_summary(account_id, since=since, until=until, per_key=True)
        now = self.clock()
        subs = []
        for sub in await self.accounts.subscriptions(account_id):
            if sub.is_usable(now):
                subs.append({"subscriptionId": sub.id, "planSlug": sub.plan_slug, "budget": await self._pool_state(sub)})
        per_key = [{"keyId": key_id, "name": name, "spent": money(spend.cost), "spentNanos": spend.cost,
                    "requests": spend.requests, "cachedTokens": spend.cached_tokens,
                    "cacheSaved": money(spend.cache_saved), "cacheSavedNanos": spend.cache_saved}
                   for key_id, name, spend in summary.by_key]
        report = report_of(summary)
        data = {
            "subscriptions": subs, "keys": per_key, "total": report["total"], "byDay": report["by_day"],
            "byWeek": report["by_week"], "byMonth": report["by_month"],
            "creditBalance": money(await self._credit_balance(account_id)), **self._range_view(since, until),
        }
        if end_user is not None:
            data["endUser"] = end_user
        if by_end_user:
            data["endUsers"] = end_users_view(await self.store.usage_by_end_user(account_id, since, until, end_user))
        await self.style.reply(request, send, 200, ok(data))

    async def key_usage(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        key = await self.accounts.key(account_id, request.params["key_id"])
        since, until = self._range(request)
        window = key.budget_window
        if window is None and key.subscription_id:
            sub = await self.accounts.subscription(account_id, key.subscription_id)
            plan = await self.accounts.store.get_plan(sub.plan_slug)
            window = plan.window if plan else None
        report = report_of(await self.store.usage_summary(account_id, key.id, since, until, window))
        await self.style.reply(request, send, 200, ok({
            "keyId": key.id, "name": key.name, "total": report["total"], "byWindow": report["by_window"],
            "byDay": report["by_day"], "byWeek": report["by_week"], "byMonth": report["by_month"],
            **self._range_view(since, until),
        }))

    async def overhead(self, request: Request, send: Send) -> None:
        """`GET /api/analytics/overhead?days=N&keyId=...&steps=1`: resent context vs new input, per key and
        conversation, and the same traffic on other models and plans (tollgate.costlab.live)."""
        account_id = await self._account_id(request)
        since, until = self._range(request)
        key_id = request.query.get("keyId")
        if key_id is not None:
            key_id = (await self.accounts.key(account_id, key_id)).id  # another account's key: 404
        steps = request.query.get("steps", "").lower()
        if steps not in ("", "0", "1", "true", "false"):
            raise fields.bad("steps", "must be true or false")
        records = await self.store.usage_records(account_id, key_id=key_id, since=since, until=until)
        names = {k.id: k.name for k in await self.accounts.keys(account_id)}
        plans = await self.accounts.list_plans()
        until = self.clock() if until is None else until

        if self.overhead_report is None:
            raise APIError(404, "not_found", "this gateway does not serve the overhead report")
        data = await asyncio.to_thread(self.overhead_report, records, plans, account_id, since, until, names,
                                       steps in ("1", "true"))
        await self.style.reply(request, send, 200, ok(data))
