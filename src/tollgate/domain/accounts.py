"""The account model of SPEC section 1, as plain records. Money in nano-dollars, times in unix seconds.

Slotted: a gateway caches the records of every key in use, a hundred thousand and more, and each
request reads its key's; without an instance dict each such read is one trip to main memory less
(bench/many_keys.py), and each record is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBSCRIPTION_STATUSES = ("active", "past_due", "canceled", "expired")
KEY_TYPES = ("subscription", "credit")


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    created_at: int
    credits_granted: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    slug: str
    name: str
    price_monthly: int
    period_days: int
    window: int
    budget_per_window: int
    rpm: int
    tpm: int
    models: tuple[str, ...] | None = None
    source: str = "config"
    # When the operator retired the plan: it takes no new subscriptions; existing ones run on.
    retired_at: int | None = None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    account_id: str
    plan_slug: str
    status: str
    created_at: int
    current_period_start: int
    current_period_end: int
    cancel_at_period_end: bool = False

    def effective_status(self, now: float) -> str:
        """`expired` once the period is over, whatever was stored."""
        if self.status == "expired" or now >= self.current_period_end:
            return "expired"
        return self.status

    def is_usable(self, now: float) -> bool:
        return self.effective_status(now) != "expired"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A consumption key (`sk_`). The secret itself is never stored, only its hash."""

    id: str
    account_id: str
    type: str
    name: str
    prefix: str
    created_at: int
    subscription_id: str | None = None
    budget_limit: int | None = None
    budget_window: int | None = None
    end_user: str | None = None
    metadata: dict | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    # The last rotation (a new secret, same key id), and until when the secret before it still works.
    rotated_at: int | None = None
    previous_valid_until: int | None = None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class ManagementKey:
    """A management key (`mk_`) of an account owner. Only its hash is stored."""

    id: str
    account_id: str
    name: str
    prefix: str
    created_at: int
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class KeyContext:
    """Everything the request path needs to know about a consumption key, in one read."""

    key: ApiKey
    account: Account
    subscription: Subscription | None
    plan: Plan | None
    # Set when the secret presented is the one a rotation replaced: it is refused from this moment on.
    # The time is in the context (not only the database) so that a cached context stops at the grace's
    # end by itself, with no change for the change log to report.
    secret_valid_until: int | None = None


@dataclass(frozen=True, slots=True)
class CreditGrant:
    """One grant of prepaid credits, as the operator made it (amount in nano-dollars)."""

    id: int
    account_id: str
    amount: int
    note: str | None
    created_at: int
