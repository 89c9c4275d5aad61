"""The management plane's lifecycle routes (`/api`, `mk_` keys): key rotation and edits (a reseller's end-user
label and metadata), the account's management keys, and its credit history.

Mounted by `ManagementAPI.mount`. As everywhere on `/api`, the caller's account comes from its management
key and scopes every lookup: another account's key is not found (404), never touched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tollgate.accounts.auth import ManagementAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.accounts import ApiKey, ManagementKey
from tollgate.domain.pools import credit_pool
from tollgate.http import fields, views
from tollgate.http.request import Request, Router, Send
from tollgate.http.style import Style, money
from tollgate.ledger.protocol import BudgetLedger

# (account id, keys) -> their views, as `GET /api/keys` shows them.
KeyViews = Callable[[str, list[ApiKey]], Awaitable[list[dict]]]
# What `PATCH /api/keys/{keyId}` may change: its JSON name -> the key's field.
KEY_PATCH_FIELDS = {"name": "name", "endUser": "end_user", "metadata": "metadata"}


def ok(data: object) -> dict:
    return {"success": True, "data": data}


class ManagementLifecycleAPI:
    def __init__(self, accounts: AccountService, auth: ManagementAuth, ledger: BudgetLedger, max_body: int,
                 key_views: KeyViews, style: Style | None = None) -> None:
        self.style = style or Style()
        self.accounts = accounts
        self.auth = auth
        self.ledger = ledger
        self.max_body = max_body
        self.key_views = key_views

    def mount(self, router: Router) -> None:
        router.add("POST", "/api/keys/{key_id}/rotate", self.rotate_key)
        router.add("PATCH", "/api/keys/{key_id}", self.update_key)
        router.add("GET", "/api/management-keys", self.list_management_keys)
        router.add("POST", "/api/management-keys", self.create_management_key)
        router.add("DELETE", "/api/management-keys/{key_id}", self.revoke_management_key)
        router.add("GET", "/api/billing/credits/history", self.credit_history)

    async def _caller(self, request: Request) -> ManagementKey:
        return await self.auth.authenticate(request.bearer())

    async def _key_view(self, account_id: str, key: ApiKey) -> dict:
        return (await self.key_views(account_id, [key]))[0]

    async def rotate_key(self, request: Request, send: Send) -> None:
        """`POST /api/keys/{keyId}/rotate {"graceSeconds": 3600}`: a new secret (shown once) for the same key;
        the old secret works for the grace (0 to 604800 seconds), then is refused."""
        account_id = (await self._caller(request)).account_id
        body = fields.known(fields.obj(await request.json(self.max_body, empty={})), ("graceSeconds",))
        grace = fields.integer(body, "graceSeconds", required=False, default=3600)
        key, secret = await self.accounts.rotate_key(account_id, request.params["key_id"], grace)
        await self.style.reply(request, send, 200, ok({**await self._key_view(account_id, key), "apiKey": secret}))

    async def update_key(self, request: Request, send: Send) -> None:
        """`PATCH /api/keys/{keyId} {"name", "endUser", "metadata"}`: only the fields sent change; null clears
        `endUser` or `metadata`."""
        account_id = (await self._caller(request)).account_id
        body = fields.only(fields.obj(await request.json(self.max_body)), tuple(KEY_PATCH_FIELDS))
        fields.not_null(body, "name")
        changes = {KEY_PATCH_FIELDS[name]: value for name, value in body.items()}
        key = await self.accounts.update_key(account_id, request.params["key_id"], changes)
        await self.style.reply(request, send, 200, ok(await self._key_view(account_id, key)))

    async def list_management_keys(self, request: Request, send: Send) -> None:
        """The account's management keys, revoked ones included; `current` marks the caller's."""
        caller = await self._caller(request)
        keys = await self.accounts.management_keys(caller.account_id)
        await self.style.reply(request, send, 200, ok([views.management_key_view(k, caller.id) for k in keys]))

    async def create_management_key(self, request: Request, send: Send) -> None:
        """`POST /api/management-keys {"name"}`: another management key (shown once), e.g. to replace this one."""
        caller = await self._caller(request)
        body = fields.known(fields.obj(await request.json(self.max_body, empty={})), ("name",))
        name = fields.string(body, "name", required=False, default="default")
        key, secret = await self.accounts.create_management_key(caller.account_id, name)
        await self.style.reply(request, send, 201,
                               ok({**views.management_key_view(key, caller.id), "managementKey": secret}))

    async def revoke_management_key(self, request: Request, send: Send) -> None:
        """Revoke one of the account's management keys, the caller's own included; never the last active one."""
        caller = await self._caller(request)
        key = await self.accounts.revoke_management_key(caller.account_id, request.params["key_id"])
        await self.style.reply(request, send, 200, ok(views.management_key_view(key, caller.id)))

    async def credit_history(self, request: Request, send: Send) -> None:
        """`GET /api/billing/credits/history?limit=100&after=<grant id>`: every grant, oldest first."""
        account_id = (await self._caller(request)).account_id
        limit = fields.query_int(request.query, "limit", fields.PAGE_LIMIT_DEFAULT, 1, fields.PAGE_LIMIT_MAX)
        after = fields.query_int(request.query, "after", 0, 0, 2**62) if "after" in request.query else None
        account, grants = await self.accounts.credit_grants(account_id, after, limit + 1)
        page, more = grants[:limit], len(grants) > limit
        balance = (await self.ledger.read(credit_pool(account))).remaining
        await self.style.reply(request, send, 200, {
            **ok({"granted": money(account.credits_granted), "grantedNanos": account.credits_granted,
                  "balance": money(balance), "balanceNanos": balance,
                  "grants": [views.credit_grant_view(g) for g in page]}),
            "hasMore": more, "nextCursor": page[-1].id if more else None})
