"""The events, as bodies: what each says, and the id that makes it unique.

Every body is `{"id", "type", "createdAt", "accountId", "data"}`, camelCase, money as a decimal
string of dollars plus integer nano-dollars (`spent`, `spentNanos`). An event's id is derived
from what it is about (pool and window and threshold; subscription and period end; the account
and its credits granted), so detecting it again gives the same id, and the outbox stores it once.
"""

from __future__ import annotations

import hashlib
import secrets

import orjson

from tollgate.domain.accounts import Subscription
from tollgate.domain.alerts import (
    BUDGET_THRESHOLD,
    CREDITS_LOW,
    PING,
    SUBSCRIPTION_EXPIRED,
    SUBSCRIPTION_EXPIRING,
    AlertEvent,
)
from tollgate.domain.durations import format_duration
from tollgate.domain.money import format_usd
from tollgate.domain.pools import PoolState
from tollgate.domain.timestamps import iso

# How long after a subscription ended its expiry is still announced (a gateway that was down for
# longer says nothing of it); and how long a finished delivery is kept once its event cannot recur.
EXPIRED_LOOKBACK = 2 * 86400
KEEP_FINISHED = 7 * 86400


def event_id(key: str) -> str:
    """`evt_` and 32 hex digits, the same for the same `key` in every process and after every restart."""
    return "evt_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _event(kind: str, key: str, account_id: str, now: float, data: dict, keep_until: float | None) -> AlertEvent:
    eid = event_id(key)
    body = orjson.dumps({"id": eid, "type": kind, "createdAt": iso(now), "accountId": account_id, "data": data})
    return AlertEvent(eid, account_id, kind, body, now, keep_until)


def _money(name: str, nanos: int) -> dict:
    return {name: format_usd(nanos), f"{name}Nanos": nanos}


def _pool(state: PoolState) -> dict:
    pool = state.pool
    owner = pool.id.partition(":")[2]
    view = {"poolId": pool.id, "poolKind": pool.kind}
    if pool.kind == "subscription":
        view["subscriptionId"] = owner
    elif pool.kind == "key":
        view["keyId"] = owner
    return view


def budget_threshold(account_id: str, state: PoolState, threshold: int, exhausted: bool, now: float) -> AlertEvent:
    """`threshold` per cent of a window's budget reached (or the budget found spent: `exhausted`)."""
    pool = state.pool
    limit, spent = pool.limit, state.spent
    data = {
        **_pool(state), "threshold": threshold, "percent": min(100, spent * 100 // limit) if limit > 0 else 100,
        "exhausted": exhausted, "window": format_duration(pool.window) if pool.window else None,
        "windowStart": iso(state.window_start), "resetsAt": iso(state.resets_at),
        **_money("spent", spent), **_money("limit", limit), **_money("remaining", max(0, limit - spent)),
    }
    key = f"{BUDGET_THRESHOLD}:{pool.id}:{state.window_start}:{threshold}"
    return _event(BUDGET_THRESHOLD, key, account_id, now, data, state.resets_at)


def credits_low(account_id: str, state: PoolState, low: int, exhausted: bool, now: float) -> AlertEvent:
    """The credit balance at or below `low`. Once per amount granted: a new grant re-arms it."""
    granted = state.pool.limit
    balance = max(0, granted - state.spent)
    data = {"exhausted": exhausted, **_money("balance", balance), **_money("threshold", low),
            **_money("granted", granted)}
    return _event(CREDITS_LOW, f"{CREDITS_LOW}:{account_id}:{granted}", account_id, now, data, None)


def _subscription(sub: Subscription, now: float) -> dict:
    return {"subscriptionId": sub.id, "planSlug": sub.plan_slug, "status": sub.effective_status(now),
            "cancelAtPeriodEnd": sub.cancel_at_period_end, "currentPeriodEnd": iso(sub.current_period_end)}


def subscription_expiring(sub: Subscription, now: float) -> AlertEvent:
    data = {**_subscription(sub, now), "expiresAt": iso(sub.current_period_end),
            "secondsLeft": max(0, int(sub.current_period_end - now))}
    key = f"{SUBSCRIPTION_EXPIRING}:{sub.id}:{sub.current_period_end}"
    return _event(SUBSCRIPTION_EXPIRING, key, sub.account_id, now, data, sub.current_period_end)


def subscription_expired(sub: Subscription, now: float) -> AlertEvent:
    data = {**_subscription(sub, now), "expiredAt": iso(sub.current_period_end)}
    key = f"{SUBSCRIPTION_EXPIRED}:{sub.id}:{sub.current_period_end}"
    return _event(SUBSCRIPTION_EXPIRED, key, sub.account_id, now, data, sub.current_period_end + EXPIRED_LOOKBACK)


def ping(account_id: str, now: float) -> AlertEvent:
    """A test event (`POST /api/webhook/test`): a new one each time."""
    data = {"message": "a test event from tollgate: this webhook receives and verifies deliveries"}
    return _event(PING, f"{PING}:{account_id}:{secrets.token_hex(16)}", account_id, now, data, now)
