"""How account objects look on the management (`/api`) and operator (`/admin`) planes.

Views are plain dicts with each amount of money as `money(nanos)`; `tollgate.http.style` writes them in
the planes' one style (camelCase, money as a decimal string beside integer nano-dollars). The operator
views are built with snake_case names: the style writes them camelCase (and, for one release, under
the old names too).

The operator CLI prints the same operator views as they are built (snake_case), so an account looks
the same from `tollgate accounts show --json` as it did from `GET /admin/accounts/{id}` before the
rename. Its JSON writer takes no `Usd` marker, so those views take the money writer as `usd=`; the CLI
passes `usd_text` (the same exact figure, as a string).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tollgate.domain.accounts import Account, ApiKey, CreditGrant, ManagementKey, Plan, Subscription
from tollgate.domain.durations import format_duration
from tollgate.domain.money import format_usd
from tollgate.domain.pools import PoolState
from tollgate.domain.pricing import Price, Rates
from tollgate.domain.timestamps import iso
from tollgate.http.style import money


def usd(nanos: int | None) -> Any:
    """An exact JSON number of dollars (the data plane's prices on /v1/models)."""
    if nanos is None:
        return None
    return orjson.Fragment(format_usd(nanos).encode())


def usd_text(nanos: int | None) -> str | None:
    """Exact dollars as a string, for writers without orjson fragments (the CLI's `--json`)."""
    return None if nanos is None else format_usd(nanos)


Money = Callable[[int | None], Any]


def _rates(rates: Rates) -> dict:
    view = {"input_per_mtok": usd(rates.input_per_mtok), "output_per_mtok": usd(rates.output_per_mtok)}
    if rates.cached_input_per_mtok is not None:
        view["cached_input_per_mtok"] = usd(rates.cached_input_per_mtok)
    if rates.cache_write_per_mtok is not None:
        view["cache_write_per_mtok"] = usd(rates.cache_write_per_mtok)
    return view


def pricing(price: Price) -> dict:
    """A model's prices on /v1/models: base rates, cache prices where set, and long-context tiers if any."""
    view = {**_rates(price.base), "currency": "USD"}
    if price.tiers:
        view["tiers"] = [{"above_tokens": t.above_tokens, **_rates(t.rates)} for t in price.tiers]
    return view


# -- operator plane (built snake_case; written camelCase by the style) ------------------------------

def admin_account(a: Account, credit_balance: int | None = None, *, usd: Money = money) -> dict:
    view = {"id": a.id, "name": a.name, "created_at": iso(a.created_at), "credits_granted": usd(a.credits_granted)}
    if credit_balance is not None:
        view["credit_balance"] = usd(credit_balance)
    return view


def admin_plan(p: Plan, *, usd: Money = money) -> dict:
    return {
        "slug": p.slug, "name": p.name, "price_monthly": usd(p.price_monthly), "period_days": p.period_days,
        "window": format_duration(p.window), "budget_per_window": usd(p.budget_per_window),
        "rpm": p.rpm, "tpm": p.tpm, "models": list(p.models) if p.models is not None else None, "source": p.source,
        "retired": p.retired, "retired_at": iso(p.retired_at),
    }


def admin_subscription(s: Subscription, now: float) -> dict:
    return {
        "id": s.id, "account_id": s.account_id, "plan": s.plan_slug, "status": s.effective_status(now),
        "created_at": iso(s.created_at), "current_period_start": iso(s.current_period_start),
        "current_period_end": iso(s.current_period_end), "cancel_at_period_end": s.cancel_at_period_end,
    }


def admin_management_key(k: ManagementKey) -> dict:
    return {"id": k.id, "account_id": k.account_id, "name": k.name, "prefix": k.prefix,
            "created_at": iso(k.created_at), "revoked": k.revoked_at is not None, "revoked_at": iso(k.revoked_at)}


def admin_credit_grant(g: CreditGrant, *, usd: Money = money) -> dict:
    return {"id": g.id, "amount": usd(g.amount), "amount_nanos": g.amount, "note": g.note,
            "created_at": iso(g.created_at)}


def admin_key(k: ApiKey, *, usd: Money = money) -> dict:
    """An API key as the operator sees it: which pool it draws on and its own budget, if any."""
    return {"id": k.id, "name": k.name, "type": k.type, "subscription_id": k.subscription_id, "prefix": k.prefix,
            "budget": key_budget(k, usd=usd), "active": k.revoked_at is None, "created_at": iso(k.created_at),
            "end_user": k.end_user, "metadata": k.metadata, "rotated_at": iso(k.rotated_at),
            "previous_secret_valid_until": iso(k.previous_valid_until)}


def key_budget(k: ApiKey, *, usd: Money = money) -> dict | None:
    """A key's own budget per window (on top of its pool's), or None when it has none."""
    if k.budget_limit is None or k.budget_window is None:
        return None
    return {"limit": usd(k.budget_limit), "window": format_duration(k.budget_window)}


# -- management plane (built camelCase) ----------------------------------------

def plan_view(p: Plan) -> dict:
    return {
        "slug": p.slug, "name": p.name, "priceMonthly": money(p.price_monthly), "periodDays": p.period_days,
        "window": format_duration(p.window), "budgetPerWindow": money(p.budget_per_window),
        "rpm": p.rpm, "tpm": p.tpm, "models": list(p.models) if p.models is not None else None,
        "retired": p.retired,
    }


def key_view(k: ApiKey, subscription: Subscription | None, now: float) -> dict:
    view: dict[str, Any] = {
        "id": k.id, "name": k.name, "keyType": k.type,
        "keyPlan": subscription.plan_slug if subscription else "credits",
        "prefix": k.prefix, "isActive": k.revoked_at is None, "createdAt": iso(k.created_at),
        "revokedAt": iso(k.revoked_at), "endUser": k.end_user, "metadata": k.metadata, "budget": key_budget(k),
        "rotatedAt": iso(k.rotated_at), "previousSecretValidUntil": iso(k.previous_valid_until),
    }
    if subscription is not None:
        view["subscriptionId"] = subscription.id
        view["subscriptionStatus"] = subscription.effective_status(now)
        view["subscriptionExpiresAt"] = iso(subscription.current_period_end)
    return view


def management_key_view(k: ManagementKey, calling_key_id: str) -> dict:
    """A management key as its owner sees it; `current` marks the one this request was made with."""
    return {"id": k.id, "name": k.name, "prefix": k.prefix, "isActive": k.revoked_at is None,
            "createdAt": iso(k.created_at), "revokedAt": iso(k.revoked_at), "current": k.id == calling_key_id}


def credit_grant_view(g: CreditGrant) -> dict:
    return {"id": g.id, "amount": money(g.amount), "amountNanos": g.amount, "note": g.note,
            "createdAt": iso(g.created_at)}


def subscription_view(s: Subscription, keys: list[ApiKey], now: float, budget: PoolState | None) -> dict:
    view: dict[str, Any] = {
        "id": s.id, "planSlug": s.plan_slug, "status": s.effective_status(now),
        "currentPeriodStart": iso(s.current_period_start), "currentPeriodEnd": iso(s.current_period_end),
        "cancelAtPeriodEnd": s.cancel_at_period_end, "createdAt": iso(s.created_at),
        "keyCount": sum(1 for k in keys if k.revoked_at is None),
        "keys": [{"id": k.id, "name": k.name, "isActive": k.revoked_at is None} for k in keys],
    }
    if budget is not None:
        view["budget"] = budget_view(budget, usd=money)
    return view


def budget_view(state: PoolState, *, usd: Money = usd) -> dict:
    """A pool's budget now, in the data plane's shape (`/v1/usage`: snake_case, money as JSON numbers); the
    management plane passes `usd=money` and the style writes it camelCase, money as strings."""
    window = state.pool.window
    return {
        "spent": usd(state.spent), "limit": usd(state.pool.limit), "remaining": usd(state.remaining),
        "reserved": usd(state.reserved), "duration": format_duration(window) if window else None,
        "window_start": iso(state.window_start) if window else None, "resets_at": iso(state.resets_at),
        "spent_nanos": state.spent, "limit_nanos": state.pool.limit, "remaining_nanos": state.remaining,
    }
