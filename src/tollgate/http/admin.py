"""The operator plane (`/admin`, admin token): accounts, management keys, plans, subscriptions, credits."""

from __future__ import annotations

from collections.abc import Callable

from tollgate.accounts.auth import AdminAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.accounts import Account, Plan
from tollgate.domain.pools import credit_pool
from tollgate.http import fields, views
from tollgate.http.admin_lifecycle import AdminLifecycleAPI, models_field
from tollgate.http.cache_metrics import CacheMetrics
from tollgate.http.request import Request, Router, Send
from tollgate.http.style import Style, envelope, money
from tollgate.ledger.protocol import BudgetLedger
from tollgate.proxy.metrics import RouteMetrics
from tollgate.store.base import UnknownCursor


def ok(data: object) -> dict:
    return {"success": True, "data": data}


class AdminAPI:
    def __init__(
        self, accounts: AccountService, auth: AdminAuth, ledger: BudgetLedger, max_body: int,
        clock: Callable[[], float], metrics: RouteMetrics | None = None, caches: CacheMetrics | None = None,
        style: Style | None = None,
    ) -> None:
        self.style = style or Style()
        self.metrics = metrics
        self.caches = caches
        self.accounts = accounts
        self.auth = auth
        self.ledger = ledger
        self.max_body = max_body
        self.clock = clock

    def mount(self, router: Router) -> None:
        router.error_shape("/admin/", envelope)
        router.add("GET", "/admin/accounts", self.list_accounts)
        router.add("POST", "/admin/accounts", self.create_account)
        router.add("GET", "/admin/accounts/{account_id}", self.get_account)
        router.add("POST", "/admin/accounts/{account_id}/management-keys", self.create_management_key)
        router.add("GET", "/admin/accounts/{account_id}/subscriptions", self.list_subscriptions)
        router.add("POST", "/admin/accounts/{account_id}/subscriptions", self.grant_subscription)
        router.add("POST", "/admin/accounts/{account_id}/credits", self.grant_credits)
        router.add("POST", "/admin/subscriptions/{subscription_id}/cancel", self.cancel_subscription)
        router.add("POST", "/admin/subscriptions/{subscription_id}/expire", self.expire_subscription)
        router.add("GET", "/admin/plans", self.list_plans)
        router.add("POST", "/admin/plans", self.create_plan)
        router.add("GET", "/admin/metrics/routes", self.route_metrics)
        router.add("GET", "/admin/metrics/caches", self.cache_metrics)
        AdminLifecycleAPI(self.accounts, self.auth, self.ledger, self.max_body, self.clock, self.style).mount(router)

    async def _operator(self, request: Request) -> None:
        """Refuse unless the request carries the operator token (wrong ones back off per client address)."""
        await self.auth.check(request.bearer(), request.client_address)

    async def _body(self, request: Request) -> dict:
        await self._operator(request)
        return await self.style.body(request, self.max_body)

    async def _credit_balance(self, account: Account) -> int:
        return (await self.ledger.read(credit_pool(account))).remaining

    async def list_accounts(self, request: Request, send: Send) -> None:
        """`GET /admin/accounts?limit=100&after=<account id>`: a page of accounts, oldest first."""
        await self._operator(request)
        limit, after = fields.page(request.query)
        try:
            accounts = await self.accounts.store.list_accounts(after=after, limit=limit + 1)
        except UnknownCursor:
            raise fields.bad("after", "is not an account id (use the nextCursor of the page before)") from None
        page, more = accounts[:limit], len(accounts) > limit
        await self.style.reply(request, send, 200, {**ok([views.admin_account(a) for a in page]), "has_more": more,
                                                    "next_cursor": page[-1].id if more else None})

    async def create_account(self, request: Request, send: Send) -> None:
        body = await self._body(request)
        account, key, secret = await self.accounts.create_account(fields.string(body, "name"))
        data = views.admin_account(account, 0)
        data["management_key"] = secret
        data["management_key_id"] = key.id
        await self.style.reply(request, send, 201, ok(data))

    async def get_account(self, request: Request, send: Send) -> None:
        await self._operator(request)
        account = await self.accounts.account(request.params["account_id"])
        data = views.admin_account(account, await self._credit_balance(account))
        now = self.clock()
        data["subscriptions"] = [views.admin_subscription(s, now) for s in await self.accounts.subscriptions(account.id)]
        data["management_keys"] = [
            views.admin_management_key(k) for k in await self.accounts.store.list_management_keys(account.id)
        ]
        await self.style.reply(request, send, 200, ok(data))

    async def create_management_key(self, request: Request, send: Send) -> None:
        await self._operator(request)
        body = await self.style.body(request, self.max_body, empty={})
        name = fields.string(body, "name", required=False, default="default")
        key, secret = await self.accounts.create_management_key(request.params["account_id"], name)
        data = views.admin_management_key(key)
        data["management_key"] = secret
        await self.style.reply(request, send, 201, ok(data))

    async def list_subscriptions(self, request: Request, send: Send) -> None:
        await self._operator(request)
        account = await self.accounts.account(request.params["account_id"])
        now = self.clock()
        subs = await self.accounts.subscriptions(account.id)
        await self.style.reply(request, send, 200, ok([views.admin_subscription(s, now) for s in subs]))

    async def grant_subscription(self, request: Request, send: Send) -> None:
        body = await self._body(request)
        plan = fields.string(body, "plan")
        period_days = fields.integer(body, "periodDays", required=False, minimum=1)
        sub = await self.accounts.grant_subscription(request.params["account_id"], plan, period_days)
        await self.style.reply(request, send, 201, ok(views.admin_subscription(sub, self.clock())))

    async def grant_credits(self, request: Request, send: Send) -> None:
        body = await self._body(request)
        amount = fields.dollars(body, "amount", positive=True)
        note = fields.string(body, "note", required=False)
        account = await self.accounts.grant_credits(request.params["account_id"], amount, note)
        data = views.admin_account(account, await self._credit_balance(account))
        await self.style.reply(request, send, 200, ok(data))

    async def cancel_subscription(self, request: Request, send: Send) -> None:
        await self._operator(request)
        sub = await self.accounts.cancel_subscription(None, request.params["subscription_id"])
        await self.style.reply(request, send, 200, ok(views.admin_subscription(sub, self.clock())))

    async def expire_subscription(self, request: Request, send: Send) -> None:
        await self._operator(request)
        sub = await self.accounts.expire_subscription(None, request.params["subscription_id"])
        await self.style.reply(request, send, 200, ok(views.admin_subscription(sub, self.clock())))

    async def list_plans(self, request: Request, send: Send) -> None:
        await self._operator(request)
        plans = await self.accounts.list_plans()
        await self.style.reply(request, send, 200, ok([views.admin_plan(p) for p in plans]))

    async def create_plan(self, request: Request, send: Send) -> None:
        """`POST /admin/plans`: a new operator plan; a slug in use is a 409 (change a plan with PATCH)."""
        body = await self._body(request)
        slug = fields.string(body, "slug")
        models = models_field(body)
        plan = Plan(
            slug=slug,
            name=fields.string(body, "name", required=False, default=slug.title()),
            price_monthly=fields.dollars(body, "priceMonthly", required=False) or 0,
            period_days=fields.integer(body, "periodDays", required=False, minimum=1, default=30),
            window=fields.duration(body, "window", required=False) or 5 * 3600,
            budget_per_window=fields.dollars(body, "budgetPerWindow"),
            rpm=fields.integer(body, "rpm", required=False, minimum=1, default=60),
            tpm=fields.integer(body, "tpm", required=False, minimum=1, default=100_000),
            models=models,
            source="operator",
        )
        plan = await self.accounts.create_plan(plan)
        await self.style.reply(request, send, 201, ok(views.admin_plan(plan)))


    async def route_metrics(self, request: Request, send: Send) -> None:
        """Per-route requests, latency, cost and fallbacks since the gateway started."""
        await self._operator(request)
        rows = self.metrics.snapshot() if self.metrics else []
        await self.style.reply(request, send, 200, ok([{**row, "cost": money(row["cost_nanos"])} for row in rows]))

    async def cache_metrics(self, request: Request, send: Send) -> None:
        """The per-key caches of the request path: size, capacity, hits, misses, evictions, store reads."""
        await self._operator(request)
        await self.style.reply(request, send, 200, ok(self.caches.snapshot() if self.caches else {}))
