"""The storage interface. Callers depend on this, never on a database module."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tollgate.domain.accounts import Account, ApiKey, CreditGrant, KeyContext, ManagementKey, Plan, Subscription
from tollgate.domain.alerts import AlertDelivery, AlertEvent, Webhook
from tollgate.domain.spend import Spend, SpendSummary
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.persistence import LedgerStore
from tollgate.store.usage_by_end_user import EndUserSpend

if TYPE_CHECKING:  # (these modules import UnknownCursor from here)
    from tollgate.store.request_log import LogPage, RequestFilter
    from tollgate.store.usage_series import AccountSpend, UsageSeries


# Records one page of the request log may read when its filters thin the walk (SQLite: 3-12 ms warm).
SCAN_ROWS = 10_000


class UnknownCursor(LookupError):
    """A page's `after` names no row of the list it pages through (another account's, or none at all)."""


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in the account model after a sequence number, as read from the change log.

    `items` are (kind, ref): ("key", key id), ("subscription", id), ("account", id), ("plan", slug), in
    order, up to and including number `last`. When `complete` is False the log no longer holds every
    change since the number asked for (the reader fell too far behind): forget everything cached.
    """

    last: int
    items: tuple[tuple[str, str], ...]
    complete: bool


class Store(LedgerStore, Protocol):
    """Accounts, plans, subscriptions, keys and usage records; and the ledger's rows (`LedgerStore`)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    def change_seq(self) -> int:
        """A number that changes whenever accounts, plans, subscriptions or keys change.

        Synchronous and cheap on purpose: the request path checks it on every
        request, and when it moved asks `changes_since` what changed, so that it
        drops the cached key contexts a change touches the moment any process edits them.
        """

    async def changes_since(self, seq: int) -> Changes:
        """The change log after `seq` (see `Changes`); the newest number is `change_seq()` or later."""

    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...

    async def upsert_plan(self, plan: Plan) -> None: ...
    async def get_plan(self, slug: str) -> Plan | None: ...
    async def list_plans(self) -> list[Plan]: ...

    async def create_account(self, account: Account) -> None: ...
    async def get_account(self, account_id: str) -> Account | None: ...
    async def list_accounts(self, after: str | None = None, limit: int | None = None) -> list[Account]:
        """Accounts oldest first (created_at, then id); with `after` (an account id) those after it
        (`UnknownCursor` when there is none such), at most `limit` of them."""
    async def add_credits(self, account_id: str, amount: int, note: str | None, at: int) -> Account: ...

    async def create_management_key(self, key: ManagementKey, key_hash: str) -> None: ...
    async def find_management_key(self, key_hash: str) -> ManagementKey | None: ...
    async def list_management_keys(self, account_id: str) -> list[ManagementKey]: ...
    async def revoke_management_key(self, key_id: str, at: int) -> None: ...

    async def create_subscription(self, subscription: Subscription) -> None: ...
    async def get_subscription(self, subscription_id: str) -> Subscription | None: ...
    async def list_subscriptions(self, account_id: str) -> list[Subscription]: ...
    async def update_subscription(self, subscription: Subscription) -> None: ...

    async def create_api_key(self, key: ApiKey, key_hash: str) -> None: ...
    async def get_api_key(self, key_id: str) -> ApiKey | None: ...
    async def list_api_keys(self, account_id: str, after: str | None = None, limit: int | None = None) -> list[ApiKey]:
        """The account's keys oldest first (created_at, then id); with `after` (a key id of this account)
        those after it (`UnknownCursor` when there is none such), at most `limit` of them."""
    async def revoke_api_key(self, key_id: str, at: int) -> None: ...
    async def find_key_context(self, key_hash: str) -> KeyContext | None: ...
    async def find_key_contexts(self, key_hashes: Sequence[str]) -> dict[str, KeyContext]:
        """The contexts of the consumption keys with these hashes, by hash (unknown ones left out), in one read."""
    async def create_api_keys(self, keys: Sequence[tuple[ApiKey, str]]) -> None:
        """Many (key, hash) pairs in one transaction: an import, or a benchmark's million keys."""

    # -- the account lifecycle (store/sqlite_lifecycle.py): each check-and-change is atomic --

    async def insert_plan(self, plan: Plan) -> bool:
        """Add a plan; False (nothing written) when its slug exists already."""
    async def update_plan(self, slug: str, changes: Mapping[str, Any], source: str) -> Plan | None:
        """Set only `changes` (Plan field names) of plan `slug` if its source is `source`; the plan now, or None."""
    async def set_plan_retired(self, slug: str, at: int | None) -> Plan | None:
        """Retire the plan at `at` (an earlier retirement kept), or with None un-retire it; None: no such plan."""
    async def modify_subscription(self, subscription_id: str,
                                  change: Callable[[Subscription], Subscription]) -> Subscription | None:
        """Write `change(the subscription)` in the transaction that read it; None: no such subscription.
        A refusal raised by `change` writes nothing. `change` must be quick and pure."""
    async def rotate_api_key(self, key_id: str, new_hash: str, new_prefix: str, at: int,
                             previous_valid_until: int | None) -> bool:
        """A new secret for an active key; the old one found by its hash until `previous_valid_until` (None: never
        again). False when there is no such active key."""
    async def update_api_key(self, key_id: str, changes: Mapping[str, Any]) -> ApiKey | None:
        """Set only `changes` (name, end_user, metadata); the key now, or None."""
    async def list_end_user_keys(self, account_id: str, end_user: str, after: str | None = None,
                                 limit: int | None = None) -> list[ApiKey]:
        """The account's keys labelled `end_user`, paged as `list_api_keys`."""
    async def revoke_management_key_of(self, account_id: str, key_id: str, at: int, keep_one: bool) -> bool:
        """Revoke the account's active management key; with `keep_one` only while another stays active. False:
        nothing revoked."""
    async def list_credit_grants(self, account_id: str, after: int | None = None,
                                 limit: int | None = None) -> list[CreditGrant]:
        """The account's credit grants oldest first; with `after` (a grant id) those after it."""
    async def usage_by_end_user(self, account_id: str, since: float | None, until: float | None,
                                end_user: str | None = None) -> list[EndUserSpend]:
        """Per end-user label of the account's keys (only `end_user`'s when given): keys and spend in the range."""
    async def end_user_summary(self, account_id: str, end_user: str, since: float | None,
                               until: float | None) -> SpendSummary:
        """`usage_summary(..., per_key=True)` over only the account's keys labelled `end_user`."""

    async def routed_samples(self, count: int, since: float) -> list[tuple[str, str, str]]:
        """(request text, category, model) of up to `count` random routed requests since `since` (opt-in text)."""

    async def usage_records(
        self, account_id: str, key_id: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[UsageRecord]:
        """Every record of the range, in the order written. The cost lab needs them one by one; a report of
        sums asks `usage_summary`, which never brings the records out of the database."""

    async def usage_summary(
        self, account_id: str, key_id: str | None = None, since: float | None = None, until: float | None = None,
        window: int | None = None, per_key: bool = False,
    ) -> SpendSummary:
        """The spend of the account's (or one key's) records in [since, until): a total, and grouped by budget
        window of length `window` (None: one "credits" period), UTC day, ISO week and month, summed by the
        database (`tollgate.domain.spend.summarize` names the periods). Equal to `spend_report` of the records.
        With `per_key`, also every key of the account with its spend (`by_key`), from the same snapshot.
        History before the prune horizon comes from the hourly aggregates (store/usage_queries.py)."""

    async def usage_total(self, account_id: str, key_id: str | None, since: float) -> Spend:
        """The spend of the account's (or one key's) requests from `since` to now, from the hourly aggregates
        for whole hours: the cheap total that `/v1/usage` asks on every call."""

    async def prune_usage(self, before: int, limit: int, after: str = "") -> tuple[int, str | None]:
        """Delete up to `limit` raw usage records admitted before `before` (an hour boundary), going through the
        accounts in id order from the first above `after`: (how many went, where to go on, None when done).
        Their hourly aggregates and every spend counter stay (ledger/retention.py)."""

    async def usage_records_page(self, after_id: int, before: float | None,
                                 limit: int) -> list[tuple[int, UsageRecord]]:
        """Up to `limit` raw records of every account after the record id `after_id`, in id order, admitted
        before `before` (all when None), with their ids: what `tollgate usage export` writes."""

    # -- alert webhooks and their outbox (docs/alerts.md) --

    async def get_webhook(self, account_id: str) -> Webhook | None: ...
    async def list_webhooks(self) -> list[Webhook]: ...
    async def put_webhook(self, webhook: Webhook) -> None:
        """Create or replace the account's webhook (its `created_at` is kept when it had one)."""
    async def delete_webhook(self, account_id: str, at: float) -> bool:
        """Remove it; deliveries still pending are given up on. False when there was none."""
    async def enqueue_alerts(self, events: Sequence[AlertEvent]) -> list[str]:
        """Store the events whose event id is new, due at once; the ids of those stored."""
    async def due_alerts(self, now: float, limit: int) -> list[AlertDelivery]:
        """Pending deliveries due by `now`, the most overdue first."""
    async def record_alert_attempt(self, delivery_id: int, attempts: int, next_attempt_at: float | None,
                                   delivered_at: float | None, failed_at: float | None, status: int | None,
                                   error: str | None) -> None:
        """What an attempt gave (a row no longer pending is left as it is)."""
    async def recent_alerts(self, account_id: str, limit: int) -> list[AlertDelivery]:
        """The account's newest deliveries first."""
    async def pending_alerts(self, account_id: str) -> int: ...
    async def subscriptions_near_end(self, since: float, now: float) -> list[Subscription]:
        """Subscriptions of accounts with a webhook that ended after `since` or end within its notice of `now`."""
    async def prune_alerts(self, finished_before: float, now: float) -> int:
        """Forget finished deliveries made before `finished_before` whose event cannot be detected again
        (a bounded batch); how many."""

    # -- the request log and usage over time (issue 15; store/request_log.py, store/usage_series.py) --

    async def request_log(self, request_filter: RequestFilter, before: int | None, limit: int,
                          scan: int = SCAN_ROWS) -> LogPage:
        """Up to `limit` raw records of the filter, newest first, after record id `before` (the last of the page
        before; `UnknownCursor` when it is none of the filter's account or key). A filter that leaves records
        out reads at most `scan` of them: a page may then come back short, even empty, with `stopped_at` the id
        of the last record read, where the next page goes on (store/request_log.py)."""
    async def usage_series(self, account_id: str, since: float, until: float, group_by: str | None, bucket: int,
                           key_id: str | None = None) -> UsageSeries:
        """The account's (or one key's) usage per hour or day and group, from the hourly aggregates only."""
    async def spend_by_account(self, since: float, until: float, after: str | None,
                               limit: int) -> list[AccountSpend]:
        """A page of accounts (oldest first, after account id `after`: `UnknownCursor` if none such) with their
        usage in the range, from the hourly aggregates."""
