"""Usage over time, spend per account and each key's budget now (issue 15): what the dashboard draws.

- `GET /api/usage/hourly` (management key) and `GET /admin/usage/hourly?accountId=` (operator): an
  account's usage per hour or day, by key, model, model used, route or status, from the hourly
  aggregates (store/usage_series.py), never from the records: a year of charts stays one index range.
  Buckets that can no longer change are kept in memory (http/series_cache.py): a reload of a 7-day chart
  reads its last hour or two from the store; a long answer is built and written in chunks that yield to the
  event loop, so a chart never holds the data plane's requests for more than about a millisecond.
- `GET /admin/usage/accounts` (operator): a page of accounts with their usage in a range.
- `GET /api/budgets` (management key): a page of the account's keys, each with the budgets a request
  with it must fit, as they stand now (spent, reserved, remaining, when the window resets).

Money is a decimal string of dollars beside its integer nano-dollars (`cost`, `costNanos`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

from tollgate.accounts.auth import AdminAuth, ManagementAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.accounts import Account, ApiKey, Plan, Subscription
from tollgate.domain.durations import format_duration
from tollgate.domain.money import format_usd
from tollgate.domain.pools import Pool, PoolState, credit_pool, key_pool, subscription_pool
from tollgate.domain.timestamps import iso
from tollgate.http import fields
from tollgate.http.errors import ENVELOPE_SHAPE
from tollgate.http.request import Request, Router, Send, send_json
from tollgate.http.request_log import text_query
from tollgate.http.series_cache import SeriesCache
from tollgate.ledger.protocol import BudgetLedger
from tollgate.store.base import Store, UnknownCursor
from tollgate.store.usage_series import DAY, GROUPS, HOUR, Sums, UsageSeries

DAYS_DEFAULT = 7
DAYS_MAX = 366
HOURLY_DAYS_MAX = 31  # hour buckets for at most this long a range (a year of hours is no chart)
BUCKETS = {"hour": HOUR, "day": DAY}
CHUNK = 256  # points built (or written as JSON) between two yields to the event loop: about a millisecond


def _ok(data: object, **extra: object) -> dict:
    return {"success": True, "data": data, **extra}


def sums_view(s: Sums) -> dict:
    return {"requests": s.requests, "inputTokens": s.input_tokens, "outputTokens": s.output_tokens,
            "cachedTokens": s.cached_tokens, "cost": format_usd(s.cost), "costNanos": s.cost, "errors": s.errors,
            "fallbacks": s.fallbacks,
            "latencyMsAvg": round(s.latency_ms / s.requests, 1) if s.requests else None}


async def series_view(series: UsageSeries, group_by: str | None) -> tuple[list[dict], list[dict], dict]:
    """(points, groups with their totals, most spent first, the total) of a series.

    Built CHUNK points at a time, yielding to the event loop between chunks: a 7-day chart by key is
    thousands of points, and building it in one piece (10-20 ms) would hold every data-plane request in
    flight behind it. A bucket's start is written once (every group of the bucket shares it)."""
    points: list[dict] = []
    groups: dict[str | int | None, Sums] = {}
    latency = 0.0  # the total's, added in the points' order as ever (a float)
    names = series.key_names if group_by == "key" else None
    starts: dict[int, str | None] = {}
    for at, p in enumerate(series.points):
        if at % CHUNK == CHUNK - 1:
            await asyncio.sleep(0)
        start = starts.get(p.start)
        if start is None:
            start = starts[p.start] = iso(p.start)
        view = {"start": start, "group": p.group, **sums_view(p.sums)}
        if names is not None:
            view["name"] = names.get(str(p.group))
        points.append(view)
        sums = groups.get(p.group)
        if sums is None:
            sums = groups[p.group] = Sums()
        sums.add(p.sums)
        latency += p.sums.latency_ms
    total = Sums()
    for sums in groups.values():
        total.add(sums)
    total.latency_ms = latency
    group_views = []
    for at, (group, sums) in enumerate(sorted(groups.items(),
                                              key=lambda item: (-item[1].cost, -item[1].requests, str(item[0])))):
        if at % CHUNK == CHUNK - 1:
            await asyncio.sleep(0)
        view = {"group": group, **sums_view(sums)}
        if names is not None:
            view["name"] = names.get(str(group))
        group_views.append(view)
    return points, group_views, sums_view(total)


async def json_list(items: list[dict]) -> list[dict] | orjson.Fragment:
    """A long list written as JSON CHUNK items at a time, yielding to the event loop between chunks (orjson
    copies the fragment as it is): a chart's points are most of its answer, hundreds of KB; a short list as it is."""
    if len(items) <= CHUNK:
        return items
    parts = []
    for at in range(0, len(items), CHUNK):
        parts.append(orjson.dumps(items[at:at + CHUNK])[1:-1])
        await asyncio.sleep(0)
    return orjson.Fragment(b"[" + b",".join(parts) + b"]")


def pool_view(state: PoolState) -> dict:
    pool = state.pool
    return {
        "kind": pool.kind, "spent": format_usd(state.spent), "spentNanos": state.spent,
        "reserved": format_usd(state.reserved), "reservedNanos": state.reserved,
        "remaining": format_usd(state.remaining), "remainingNanos": state.remaining,
        "limit": format_usd(pool.limit), "limitNanos": pool.limit,
        "duration": format_duration(pool.window) if pool.window else None,
        "windowStart": iso(state.window_start) if pool.window else None, "resetsAt": iso(state.resets_at),
    }


class UsageSeriesAPI:
    """`late`: how long after its start a usage record may still reach the store (a request's longest life and the
    ledger's backlog bound); the buckets of a series older than that (and a minute) are served from memory."""

    def __init__(self, accounts: AccountService, store: Store, manage: ManagementAuth, admin: AdminAuth,
                 ledger: BudgetLedger, clock: Callable[[], float], late: float) -> None:
        self.accounts = accounts
        self.store = store
        self.series = SeriesCache(store, clock, late)
        self.manage = manage
        self.admin = admin
        self.ledger = ledger
        self.clock = clock

    def mount(self, router: Router) -> None:
        router.error_shape("/api/", ENVELOPE_SHAPE)
        router.error_shape("/admin/", ENVELOPE_SHAPE)
        router.add("GET", "/api/usage/hourly", self.account_series)
        router.add("GET", "/admin/usage/hourly", self.operator_series)
        router.add("GET", "/admin/usage/accounts", self.accounts_spend)
        router.add("GET", "/api/budgets", self.budgets)

    def _range(self, query: dict[str, str]) -> tuple[float, float]:
        now = self.clock()
        since, until = fields.time_range(query, now, DAYS_DEFAULT, DAYS_MAX)
        return since, now if until is None else until

    async def _series(self, request: Request, send: Send, account_id: str) -> None:
        query = request.query
        since, until = self._range(query)
        group_by = query.get("groupBy")
        if group_by is not None and group_by not in GROUPS:
            raise fields.bad("groupBy", f"must be one of {', '.join(GROUPS)}, got {group_by[:40]!r}")
        name = query.get("bucket") or ("hour" if until - since <= DAYS_DEFAULT * DAY else "day")
        if name not in BUCKETS:
            raise fields.bad("bucket", f"must be hour or day, got {name[:20]!r}")
        if name == "hour" and until - since > HOURLY_DAYS_MAX * DAY:
            raise fields.bad("bucket", f"hour buckets cover at most {HOURLY_DAYS_MAX} days: ask for day buckets")
        key_id = text_query(query, "keyId")
        if key_id is not None:
            key_id = (await self.accounts.key(account_id, key_id)).id  # another account's key: 404
        series = await self.series.usage_series(account_id, since, until, group_by, BUCKETS[name], key_id)
        points, groups, total = await series_view(series, group_by)
        await send_json(send, 200, _ok({
            "accountId": account_id, "since": iso(since - since % HOUR), "until": iso(-(-until // HOUR) * HOUR),
            "bucket": name, "groupBy": group_by, "keyId": key_id, "points": await json_list(points),
            "groups": await json_list(groups), "total": total,
        }))

    async def account_series(self, request: Request, send: Send) -> None:
        """`GET /api/usage/hourly?days=7&groupBy=model&bucket=hour`: the account's usage over time."""
        account_id = (await self.manage.authenticate(request.bearer())).account_id
        await self._series(request, send, account_id)

    async def operator_series(self, request: Request, send: Send) -> None:
        """`GET /admin/usage/hourly?accountId=...`: one account's usage over time."""
        await self.admin.check(request.bearer(), request.client_address)
        account_id = text_query(request.query, "accountId")
        if account_id is None:
            raise fields.bad("accountId", "is required")
        await self._series(request, send, (await self.accounts.account(account_id)).id)

    async def accounts_spend(self, request: Request, send: Send) -> None:
        """`GET /admin/usage/accounts?days=7&limit=100&after=<account id>`: accounts (oldest first) with their usage
        in the range."""
        await self.admin.check(request.bearer(), request.client_address)
        since, until = self._range(request.query)
        limit, after = fields.page(request.query)
        try:
            rows = await self.store.spend_by_account(since, until, after, limit + 1)
        except UnknownCursor:
            raise fields.bad("after", "is not an account id (use the nextCursor of the page before)") from None
        page, more = rows[:limit], len(rows) > limit
        data = [{"accountId": r.account_id, "name": r.name, "createdAt": iso(r.created_at), **sums_view(r.sums)}
                for r in page]
        await send_json(send, 200, _ok(data, hasMore=more, nextCursor=page[-1].account_id if more else None,
                                       since=iso(since - since % HOUR), until=iso(-(-until // HOUR) * HOUR)))

    async def budgets(self, request: Request, send: Send) -> None:
        """`GET /api/budgets?limit=100&after=<key id>`: a page of the account's keys (oldest first), each with its
        budgets now; `budget` is the one with the least remaining (the one a request meets first)."""
        account_id = (await self.manage.authenticate(request.bearer())).account_id
        limit, after = fields.page(request.query)
        try:
            keys = await self.store.list_api_keys(account_id, after=after, limit=limit + 1)
        except UnknownCursor:
            raise fields.bad("after", "is not a key id of this account (use the nextCursor of the page before)") from None
        page, more = keys[:limit], len(keys) > limit
        account = await self.accounts.account(account_id)
        subs = {s.id: s for s in await self.accounts.subscriptions(account_id)}
        plans = {p.slug: p for p in await self.accounts.list_plans()}
        now = self.clock()
        states: dict[str, PoolState] = {}
        data = []
        for key in page:
            sub = subs.get(key.subscription_id or "")
            view: dict = {"keyId": key.id, "name": key.name, "keyType": key.type, "prefix": key.prefix,
                          "isActive": key.is_active, "endUser": key.end_user, "subscriptionId": key.subscription_id,
                          "subscriptionStatus": sub.effective_status(now) if sub else None,
                          "budget": None, "pools": []}
            if key.is_active:
                pools = [await self._state(states, p) for p in _pools(key, sub, plans, account)]
                view["pools"] = [pool_view(s) for s in pools]
                windowed = [s for s in pools if s.pool.window] or pools
                if windowed:
                    view["budget"] = pool_view(min(windowed, key=lambda s: s.remaining))
            data.append(view)
        await send_json(send, 200, _ok(data, hasMore=more, nextCursor=page[-1].id if more else None))

    async def _state(self, states: dict[str, PoolState], pool: Pool) -> PoolState:
        """A pool's state, read once per answer (a subscription's keys share theirs)."""
        state = states.get(pool.id)
        if state is None:
            state = states[pool.id] = await self.ledger.read(pool)
        return state


def _pools(key: ApiKey, sub: Subscription | None, plans: dict[str, Plan], account: Account) -> list[Pool]:
    """The budgets a request with `key` must fit (`tollgate.domain.pools.pools_for`, from the key's parts)."""
    plan = plans.get(sub.plan_slug) if sub is not None else None
    main = subscription_pool(sub, plan) if key.type == "subscription" and sub and plan else credit_pool(account)
    own = key_pool(key)
    return [main] if own is None else [main, own]
