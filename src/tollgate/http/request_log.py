"""The request log (issue 15): one row per request, newest first, filtered and paged by cursor.

- `GET /api/requests` (management key): the account's requests.
- `GET /admin/requests` (operator token): any account's (`accountId` narrows it to one).
- `GET /v1/requests` (consumption key): the key's own requests, nothing else of its account.

Filters: `keyId`, `model` (the model that answered, or the name the upstream was sent), `status` (a
code such as `429`, or a class such as `4xx`), `since`, `until` (ISO-8601 or unix seconds), `endUser`
(the keys labelled so). Pages: `limit` (1 to 500, default 50) and `before` (the `nextCursor` of the
page before, a record id) answer `hasMore` and `nextCursor`. A page reads at most 10,000 records
(store/request_log.py `SCAN_ROWS`): a filter that matches rarely may answer fewer rows than `limit`,
even none, with `hasMore` true; its `nextCursor` goes on from where the page stopped reading. The
rows come from the raw usage records (store/request_log.py), kept `[ledger] usage_retention_days`; what a request said or was answered is
never in them (request text is stored only under the operator's `[server] store_request_text`, for
the router's training samples, and never shown here).
"""

from __future__ import annotations

from tollgate.accounts.auth import AdminAuth, ConsumptionAuth, ManagementAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.bounds import check_end_user
from tollgate.domain.money import format_usd
from tollgate.domain.timestamps import iso
from tollgate.http import fields
from tollgate.http.errors import ENVELOPE_SHAPE
from tollgate.http.request import Request, Router, Send, send_json
from tollgate.store.base import Store, UnknownCursor
from tollgate.store.request_log import LoggedRequest, LogPage, RequestFilter

LIMIT_DEFAULT = 50
LIMIT_MAX = 500
MAX_ID = 200  # an id, a model name: anything longer is not one


def text_query(query: dict[str, str], name: str) -> str | None:
    """An id or a name from the query string (absent: None)."""
    value = query.get(name)
    if value is None:
        return None
    if not value or len(value) > MAX_ID:
        raise fields.bad(name, f"must be 1 to {MAX_ID} characters")
    return value


def status_query(query: dict[str, str]) -> tuple[int | None, int | None]:
    """`status=429` (one code) or `status=4xx` (a class): the range of statuses to keep."""
    text = query.get("status")
    if text is None:
        return None, None
    lowered = text.lower()
    if len(lowered) == 3 and lowered[0] in "12345" and lowered.endswith("xx"):
        first = int(lowered[0]) * 100
        return first, first + 99
    if lowered.isascii() and lowered.isdigit() and len(lowered) == 3:
        return int(lowered), int(lowered)
    raise fields.bad("status", f"must be a status code such as 429 or a class such as 4xx, got {text[:20]!r}")


def before_query(query: dict[str, str]) -> int | None:
    text = query.get("before")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise fields.bad("before", "must be the nextCursor of the page before (a record id)")
    return int(text)


def request_view(row: LoggedRequest) -> dict:
    """One request as the log shows it: camelCase, money as a decimal string beside `costNanos`."""
    r = row.record
    return {
        "id": row.id, "requestId": r.request_id, "createdAt": iso(r.created_at), "accountId": r.account_id,
        "keyId": r.key_id, "keyName": row.key_name, "model": r.model, "upstreamModel": r.upstream_model,
        "route": r.route, "endpoint": r.endpoint, "stream": bool(r.stream), "status": r.status, "error": r.error,
        "fallbacks": r.fallbacks, "inputTokens": r.input_tokens, "outputTokens": r.output_tokens,
        "cachedTokens": r.cached_prefix_tokens, "cost": format_usd(r.cost), "costNanos": r.cost,
        "latencyMs": round(r.latency_ms, 1), "ttftMs": None if r.ttft_ms is None else round(r.ttft_ms, 1),
        "estimated": bool(r.estimated), "usageBasis": r.usage_basis, "client": r.client,
    }


class RequestLogAPI:
    def __init__(self, accounts: AccountService, store: Store, manage: ManagementAuth, keys: ConsumptionAuth,
                 admin: AdminAuth) -> None:
        self.accounts = accounts
        self.store = store
        self.manage = manage
        self.keys = keys
        self.admin = admin

    def mount(self, router: Router) -> None:
        router.error_shape("/api/", ENVELOPE_SHAPE)
        router.error_shape("/admin/", ENVELOPE_SHAPE)
        router.add("GET", "/api/requests", self.account_requests)
        router.add("GET", "/admin/requests", self.operator_requests)
        router.add("GET", "/v1/requests", self.key_requests)

    def _filter(self, query: dict[str, str], account_id: str | None, key_id: str | None) -> RequestFilter:
        status_min, status_max = status_query(query)
        end_user = query.get("endUser")
        if end_user is not None:
            fields.bounded("endUser", end_user, check_end_user)
            if account_id is None:
                raise fields.bad("endUser", "needs accountId (an end user is a label on one account's keys)")
        since, until = fields.query_time(query, "since"), fields.query_time(query, "until")
        if since is not None and until is not None and since >= until:
            raise fields.bad("since", "must be before until")
        return RequestFilter(account_id, key_id, text_query(query, "model"), status_min, status_max, since, until,
                             end_user)

    async def _page(self, request: Request, send: Send, request_filter: RequestFilter) -> None:
        query = request.query
        limit = fields.query_int(query, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX)
        try:
            rows = await self.store.request_log(request_filter, before_query(query), limit + 1)
        except UnknownCursor:
            raise fields.bad("before", "is not a request of this log (use the nextCursor of the page before)") from None
        page = rows[:limit]
        stopped_at = rows.stopped_at if isinstance(rows, LogPage) else None  # a rare filter's walk stopped short
        cursor = str(page[-1].id) if len(rows) > limit else None if stopped_at is None else str(stopped_at)
        await send_json(send, 200, {"success": True, "data": [request_view(r) for r in page],
                                    "hasMore": cursor is not None, "nextCursor": cursor})

    async def account_requests(self, request: Request, send: Send) -> None:
        """`GET /api/requests`: the management key's account's requests."""
        account_id = (await self.manage.authenticate(request.bearer())).account_id
        key_id = text_query(request.query, "keyId")
        if key_id is not None:
            key_id = (await self.accounts.key(account_id, key_id)).id  # another account's key: 404
        await self._page(request, send, self._filter(request.query, account_id, key_id))

    async def operator_requests(self, request: Request, send: Send) -> None:
        """`GET /admin/requests?accountId=`: any account's requests, every account's without `accountId`."""
        await self.admin.check(request.bearer(), request.client_address)
        account_id = text_query(request.query, "accountId")
        if account_id is not None:
            account_id = (await self.accounts.account(account_id)).id  # none such: 404
        await self._page(request, send, self._filter(request.query, account_id, text_query(request.query, "keyId")))

    async def key_requests(self, request: Request, send: Send) -> None:
        """`GET /v1/requests`: a consumption key's own requests (its account's other keys stay out of sight)."""
        ctx = await self.keys.authenticate(request.bearer())
        for name in ("keyId", "endUser", "accountId"):
            if name in request.query:
                raise fields.bad(name, "is not a filter here: a consumption key sees its own requests only")
        await self._page(request, send, self._filter(request.query, ctx.account.id, ctx.key.id))
