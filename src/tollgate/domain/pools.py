"""Budget pools: which budgets a request must fit, derived from the key that sent it."""

from __future__ import annotations

from dataclasses import dataclass, field

from tollgate.domain.accounts import Account, ApiKey, KeyContext, Plan, Subscription


@dataclass(frozen=True, slots=True)
class Pool:
    """One budget. `window` is its length in seconds, or None for credits (no reset).

    `account`: the account the budget belongs to. A shared ledger keeps all of an account's
    pools under one key tag (`{account}` in Redis), so that every pool a request draws from
    lives in one Redis Cluster slot and one script can touch them all atomically. It is not
    part of a pool's identity (equality and hashing ignore it): `id` already is unique.
    """

    id: str
    kind: str  # "subscription" | "key" | "credits"
    limit: int
    window: int | None
    account: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class PoolState:
    pool: Pool
    window_start: int
    resets_at: int | None
    spent: int
    reserved: int

    @property
    def remaining(self) -> int:
        """What is left to spend once every open reservation settles at its worst case."""
        return max(0, self.pool.limit - self.spent - self.reserved)



def subscription_pool(subscription: Subscription, plan: Plan) -> Pool:
    """A subscription is one pool shared by all its keys."""
    return Pool(f"sub:{subscription.id}", "subscription", plan.budget_per_window, plan.window, subscription.account_id)


def credit_pool(account: Account) -> Pool:
    """An account's prepaid credits: limit = everything granted, no window, never below zero."""
    return Pool(f"credit:{account.id}", "credits", account.credits_granted, None, account.id)


def key_pool(key: ApiKey) -> Pool | None:
    """A key's own budget inside its pool, when it has one."""
    if key.budget_limit is None or key.budget_window is None:
        return None
    return Pool(f"key:{key.id}", "key", key.budget_limit, key.budget_window, key.account_id)


def pools_for(ctx: KeyContext) -> tuple[Pool, ...]:
    """Every budget a request with this key must fit: its pool (or credits), then its own."""
    if ctx.key.type == "subscription" and ctx.subscription is not None and ctx.plan is not None:
        main = subscription_pool(ctx.subscription, ctx.plan)
    else:
        main = credit_pool(ctx.account)
    own = key_pool(ctx.key)
    return (main,) if own is None else (main, own)
