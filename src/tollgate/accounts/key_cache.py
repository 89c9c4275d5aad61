"""Cached key contexts, indexed so that a change drops exactly the contexts it touches.

A request's key context is a snapshot of its key, account, subscription and plan. When one
of those changes, only the contexts built from it are out of date: a key's own (by key id),
or every key of a subscription, an account or a plan. Dropping the whole cache instead (as
tollgate did before the change log) makes every unrelated key pay a database read after any
change anywhere, which with keys created all day means the cache never stays warm.

Contexts of one account (subscription, plan) also share its record object, so a reseller's
hundred thousand keys cost their own rows in memory, not a copy of the account with each.

A key has one secret, except during a rotation's grace: then its old and new secrets may both be
cached, and a change to the key must drop both (`_more` holds the rare second ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tollgate.domain.accounts import KeyContext
from tollgate.domain.lru import LRU, CacheStats

Group = tuple[str, str]  # ("account", id) | ("subscription", id) | ("plan", slug)


@dataclass(slots=True)
class _Members:
    """The secrets of the cached contexts built from one account, subscription or plan, and its shared record."""

    record: object
    secrets: set[str] = field(default_factory=set)


def groups_of(ctx: KeyContext) -> list[tuple[Group, object]]:
    groups: list[tuple[Group, object]] = [(("account", ctx.account.id), ctx.account)]
    if ctx.subscription is not None:
        groups.append((("subscription", ctx.subscription.id), ctx.subscription))
    if ctx.plan is not None:
        groups.append((("plan", ctx.plan.slug), ctx.plan))
    return groups


class KeyCache:
    """At most `capacity` contexts, by the secret as presented (a hit costs a dict lookup, not a SHA-256)."""

    def __init__(self, capacity: int) -> None:
        self._lru: LRU[str, KeyContext] = LRU(capacity, on_evict=self._unindex)
        self._by_key: dict[str, str] = {}  # key id -> secret
        self._more: dict[str, set[str]] = {}  # key id -> its other cached secrets (a rotation's grace)
        self._groups: dict[Group, _Members] = {}

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, secret: str) -> KeyContext | None:
        return self._lru.get(secret)

    def peek(self, secret: str) -> KeyContext | None:
        return self._lru.peek(secret)

    def put(self, secret: str, ctx: KeyContext) -> KeyContext:
        """Cache `ctx` (the least recently used context goes beyond capacity); the context as cached."""
        ctx = self._shared(ctx)
        self._lru.put(secret, ctx)
        first = self._by_key.setdefault(ctx.key.id, secret)
        if first != secret:
            self._more.setdefault(ctx.key.id, set()).add(secret)
        for group, record in groups_of(ctx):
            members = self._groups.get(group)
            if members is None:
                members = self._groups[group] = _Members(record)
            members.secrets.add(secret)
        return ctx

    def _shared(self, ctx: KeyContext) -> KeyContext:
        """`ctx` with the account, subscription and plan records already cached, where they are equal."""
        parts = {}
        for group, record in groups_of(ctx):
            members = self._groups.get(group)
            if members is not None and members.record is not record and members.record == record:
                parts[group[0]] = members.record  # the group's kind is the context's field name
        return replace(ctx, **parts) if parts else ctx

    def _unindex_key(self, key_id: str, secret: str) -> None:
        more = self._more.get(key_id)
        if self._by_key.get(key_id) == secret:
            if more:
                self._by_key[key_id] = more.pop()
            else:
                del self._by_key[key_id]
        elif more is not None:
            more.discard(secret)
        if more is not None and not more:
            del self._more[key_id]

    def _secrets_of(self, key_id: str) -> list[str]:
        first = self._by_key.get(key_id)
        return ([] if first is None else [first]) + list(self._more.get(key_id, ()))

    def _unindex(self, secret: str, ctx: KeyContext) -> None:
        self._unindex_key(ctx.key.id, secret)
        for group, _ in groups_of(ctx):
            members = self._groups.get(group)
            if members is not None:
                members.secrets.discard(secret)
                if not members.secrets:
                    del self._groups[group]

    def apply(self, kind: str, ref: str) -> int:
        """Drop what a change of ("key" | "subscription" | "account" | "plan", id) makes out of date; how many."""
        if kind == "key":
            return sum(1 for secret in self._secrets_of(ref) if self._lru.invalidate(secret) is not None)
        members = self._groups.get((kind, ref))
        if members is None:
            return 0
        secrets = list(members.secrets)
        for secret in secrets:
            self._lru.invalidate(secret)
        return len(secrets)

    def clear(self) -> None:
        self._lru.clear()
        self._by_key.clear()
        self._more.clear()
        self._groups.clear()

    def stats(self) -> CacheStats:
        return self._lru.stats()
