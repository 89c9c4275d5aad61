"""Alert webhooks as plain records: an account's webhook, an event to send, a delivery in the outbox.

Money in nano-dollars, times in unix seconds. No I/O: `tollgate.alerts` detects and
delivers, `tollgate.store` keeps these (docs/alerts.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# The event types (the `type` of a body and of the `Tollgate-Event-Type` header).
BUDGET_THRESHOLD = "budget.threshold"
CREDITS_LOW = "credits.low"
SUBSCRIPTION_EXPIRING = "subscription.expiring"
SUBSCRIPTION_EXPIRED = "subscription.expired"
PING = "ping"
EVENT_TYPES = (BUDGET_THRESHOLD, CREDITS_LOW, SUBSCRIPTION_EXPIRING, SUBSCRIPTION_EXPIRED, PING)


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where an account's alerts go, signed with `secret`, and what makes one."""

    account_id: str
    url: str
    secret: str  # kept as given (it signs every body); shown in full only when it was made
    thresholds: tuple[int, ...]  # whole percents of a window's limit, ascending, each 1 to 100
    credits_low: int | None  # a credit balance at or below this is low; None: no credits.low events
    expiring_notice: int  # seconds before a subscription's period end that subscription.expiring is sent
    created_at: int
    updated_at: int

    def reached(self, spent: int, limit: int) -> int:
        """The highest threshold `spent` has reached of `limit` (0 when none): a few comparisons."""
        if limit <= 0:
            return 0
        scaled = spent * 100
        thresholds = self.thresholds
        for i in range(len(thresholds) - 1, -1, -1):
            if scaled >= thresholds[i] * limit:
                return thresholds[i]
        return 0


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An event to put in the outbox. `event_id` is unique: the same event is stored (and sent) once.

    `keep_until`: the row is kept at least until then, even once delivered, so that the same
    event detected again (a later settlement in the same window) is still recognised; None keeps it
    until the account's webhook is removed.
    """

    event_id: str
    account_id: str
    type: str
    body: bytes
    created_at: float
    keep_until: float | None


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One event in the outbox, with where its delivery stands."""

    id: int
    event_id: str
    account_id: str
    type: str
    body: bytes
    created_at: float
    attempts: int
    next_attempt_at: float | None  # None once delivered or given up
    delivered_at: float | None
    failed_at: float | None
    last_status: int | None  # the receiver's last HTTP status (None: no answer)
    last_error: str | None

    @property
    def status(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        if self.failed_at is not None:
            return "failed"
        return "pending"
