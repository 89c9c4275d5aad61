"""The operator plane's lifecycle routes (`/admin`, operator token): management keys listed and revoked, key
rotation, plan edits and retirement, subscription renewals, extensions and un-cancels, credit history.

Mounted by `AdminAPI.mount`; the rules are `tollgate.accounts.lifecycle`'s, the views `tollgate.http.views`'.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tollgate.accounts.auth import AdminAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.bounds import check_grace
from tollgate.domain.pools import credit_pool
from tollgate.http import fields, views
from tollgate.http.request import Request, Router, Send
from tollgate.http.style import Style, money
from tollgate.ledger.protocol import BudgetLedger

# What `PATCH /admin/plans/{slug}` may change: its JSON name -> the plan's field.
PLAN_PATCH_FIELDS = {"name": "name", "priceMonthly": "price_monthly", "periodDays": "period_days", "window": "window",
                     "budgetPerWindow": "budget_per_window", "rpm": "rpm", "tpm": "tpm", "models": "models"}


def ok(data: object) -> dict:
    return {"success": True, "data": data}


def models_field(body: dict) -> tuple[str, ...] | None:
    """A plan's `models`: a list of model ids, or null for every model."""
    models = body.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise fields.bad("models", "must be a list of model ids (or null for every model)")
    return tuple(models) if models is not None else None


def plan_changes(body: dict) -> dict[str, Any]:
    """A `PATCH /admin/plans/{slug}` body (new names) as Plan field changes: only the fields sent, read as on
    creation."""
    fields.only(body, tuple(PLAN_PATCH_FIELDS))
    for name in PLAN_PATCH_FIELDS:
        if name != "models":
            fields.not_null(body, name)
    readers: dict[str, Callable[[], Any]] = {
        "name": lambda: fields.string(body, "name"),
        "priceMonthly": lambda: fields.dollars(body, "priceMonthly"),
        "periodDays": lambda: fields.integer(body, "periodDays", minimum=1),
        "window": lambda: fields.duration(body, "window"),
        "budgetPerWindow": lambda: fields.dollars(body, "budgetPerWindow"),
        "rpm": lambda: fields.integer(body, "rpm", minimum=1),
        "tpm": lambda: fields.integer(body, "tpm", minimum=1),
        "models": lambda: models_field(body),
    }
    return {PLAN_PATCH_FIELDS[name]: readers[name]() for name in body}


class AdminLifecycleAPI:
    def __init__(self, accounts: AccountService, auth: AdminAuth, ledger: BudgetLedger, max_body: int,
                 clock: Callable[[], float], style: Style | None = None) -> None:
        self.style = style or Style()
        self.accounts = accounts
        self.auth = auth
        self.ledger = ledger
        self.max_body = max_body
        self.clock = clock

    def mount(self, router: Router) -> None:
        router.add("GET", "/admin/accounts/{account_id}/management-keys", self.list_management_keys)
        router.add("DELETE", "/admin/accounts/{account_id}/management-keys/{key_id}", self.revoke_management_key)
        router.add("GET", "/admin/accounts/{account_id}/credits", self.credit_history)
        router.add("POST", "/admin/keys/{key_id}/rotate", self.rotate_key)
        router.add("PATCH", "/admin/plans/{slug}", self.update_plan)
        router.add("POST", "/admin/plans/{slug}/retire", self.retire_plan)
        router.add("POST", "/admin/plans/{slug}/unretire", self.unretire_plan)
        router.add("POST", "/admin/subscriptions/{subscription_id}/renew", self.renew)
        router.add("POST", "/admin/subscriptions/{subscription_id}/extend", self.extend)
        router.add("POST", "/admin/subscriptions/{subscription_id}/uncancel", self.uncancel)

    async def _body(self, request: Request, *, empty: dict | None = None) -> dict:
        """The operator's JSON object body (after the token check); `empty` stands for no body when given."""
        await self.auth.check(request.bearer(), request.client_address)
        return await self.style.body(request, self.max_body, empty=empty)

    async def list_management_keys(self, request: Request, send: Send) -> None:
        await self.auth.check(request.bearer(), request.client_address)
        keys = await self.accounts.management_keys(request.params["account_id"])
        await self.style.reply(request, send, 200, ok([views.admin_management_key(k) for k in keys]))

    async def revoke_management_key(self, request: Request, send: Send) -> None:
        """`DELETE ...?force=true` may revoke the account's last active management key (a lock-out)."""
        await self.auth.check(request.bearer(), request.client_address)
        force = fields.query_flag(request.query, "force")
        key = await self.accounts.revoke_management_key(request.params["account_id"], request.params["key_id"],
                                                        force=force)
        await self.style.reply(request, send, 200, ok(views.admin_management_key(key)))

    async def credit_history(self, request: Request, send: Send) -> None:
        """`GET /admin/accounts/{id}/credits?limit=100&after=<grant id>`: every grant, oldest first."""
        await self.auth.check(request.bearer(), request.client_address)
        limit = fields.query_int(request.query, "limit", fields.PAGE_LIMIT_DEFAULT, 1, fields.PAGE_LIMIT_MAX)
        after = fields.query_int(request.query, "after", 0, 0, 2**62) if "after" in request.query else None
        account, grants = await self.accounts.credit_grants(request.params["account_id"], after, limit + 1)
        page, more = grants[:limit], len(grants) > limit
        balance = (await self.ledger.read(credit_pool(account))).remaining
        await self.style.reply(request, send, 200, {
            **ok({"account_id": account.id, "credits_granted": money(account.credits_granted),
                  "credits_granted_nanos": account.credits_granted, "credit_balance": money(balance),
                  "credit_balance_nanos": balance, "grants": [views.admin_credit_grant(g) for g in page]}),
            "has_more": more, "next_cursor": page[-1].id if more else None})

    async def rotate_key(self, request: Request, send: Send) -> None:
        """`POST /admin/keys/{key_id}/rotate {"graceSeconds": 3600}`: the new secret, shown once."""
        body = fields.known(await self._body(request, empty={}), ("graceSeconds",))
        grace = fields.bounded("graceSeconds", fields.integer(body, "graceSeconds", required=False, default=3600),
                               check_grace)
        key, secret = await self.accounts.rotate_key(None, request.params["key_id"], grace)
        await self.style.reply(request, send, 200, ok({**views.admin_key(key), "api_key": secret}))

    async def update_plan(self, request: Request, send: Send) -> None:
        """`PATCH /admin/plans/{slug}`: only the fields sent change (checked as on creation)."""
        changes = plan_changes(await self._body(request))
        plan = await self.accounts.update_plan(request.params["slug"], changes)
        await self.style.reply(request, send, 200, ok(views.admin_plan(plan)))

    async def retire_plan(self, request: Request, send: Send) -> None:
        await self.auth.check(request.bearer(), request.client_address)
        plan = await self.accounts.retire_plan(request.params["slug"])
        await self.style.reply(request, send, 200, ok(views.admin_plan(plan)))

    async def unretire_plan(self, request: Request, send: Send) -> None:
        await self.auth.check(request.bearer(), request.client_address)
        plan = await self.accounts.retire_plan(request.params["slug"], retired=False)
        await self.style.reply(request, send, 200, ok(views.admin_plan(plan)))

    async def _subscription(self, request: Request, send: Send, action: Awaitable) -> None:
        await self.style.reply(request, send, 200, ok(views.admin_subscription(await action, self.clock())))

    async def renew(self, request: Request, send: Send) -> None:
        """`POST .../renew {"periodDays": N}` (default: the plan's period)."""
        body = fields.known(await self._body(request, empty={}), ("periodDays",))
        days = fields.integer(body, "periodDays", required=False, minimum=1)
        await self._subscription(request, send, self.accounts.renew_subscription(
            None, request.params["subscription_id"], days))

    async def extend(self, request: Request, send: Send) -> None:
        """`POST .../extend {"days": N}`."""
        body = fields.known(await self._body(request), ("days",))
        days = fields.integer(body, "days", minimum=1)
        await self._subscription(request, send, self.accounts.extend_subscription(
            None, request.params["subscription_id"], days))

    async def uncancel(self, request: Request, send: Send) -> None:
        await self.auth.check(request.bearer(), request.client_address)
        await self._subscription(request, send, self.accounts.uncancel_subscription(
            None, request.params["subscription_id"]))
