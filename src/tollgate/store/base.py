"""The storage interface. Callers depend on this, never on a database module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tollgate.domain.accounts import Account, ApiKey, KeyContext, ManagementKey, Plan, Subscription
from tollgate.domain.spend import SpendSummary
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.persistence import LedgerStore


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
        With `per_key`, also every key of the account with its spend (`by_key`), from the same snapshot."""
