"""Who is calling: operator token, management keys (`mk_`), consumption keys (`sk_`).

Consumption keys are checked on every request, so their context is cached in
memory; the cache is dropped whenever the store's change counter moves, which
includes edits made by another process (the CLI), so a revoked key or an
expired subscription is refused on the very next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tollgate.domain.accounts import KeyContext, ManagementKey
from tollgate.domain.refusals import KeyRefused
from tollgate.domain.secrets import CONSUMPTION_PREFIX, MANAGEMENT_PREFIX, hash_secret, same_hash
from tollgate.store.base import Store

CACHE_LIMIT = 100_000


def invalid_key() -> KeyRefused:
    return KeyRefused(KeyRefused.INVALID, "invalid API key: pass a tollgate key as 'Authorization: Bearer sk_...'")


class ConsumptionAuth:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._seq = -1
        self._cache: dict[str, KeyContext] = {}

    async def authenticate(self, secret: str | None) -> KeyContext:
        if not secret or not secret.startswith(CONSUMPTION_PREFIX) or len(secret) > 200:
            raise invalid_key()
        seq = self.store.change_seq()
        if seq != self._seq:
            self._cache.clear()
            self._seq = seq
        # Cached by the key as presented: a hit costs one dict lookup, not a SHA-256. The store
        # is only ever asked by hash, and the cache lives in this process's memory only.
        ctx = self._cache.get(secret)
        if ctx is None:
            ctx = await self.store.find_key_context(hash_secret(secret))
            if ctx is None:
                raise invalid_key()
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[secret] = ctx
        if ctx.key.revoked_at is not None:
            raise KeyRefused(KeyRefused.REVOKED, "this API key has been revoked")
        if ctx.subscription is not None and not ctx.subscription.is_usable(self.clock()):
            raise KeyRefused(KeyRefused.SUBSCRIPTION_EXPIRED,
                             "the subscription behind this API key has expired; its keys no longer work")
        return ctx


class ManagementAuth:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def authenticate(self, secret: str | None) -> ManagementKey:
        if not secret or not secret.startswith(MANAGEMENT_PREFIX) or len(secret) > 200:
            raise KeyRefused(KeyRefused.INVALID_MANAGEMENT, "pass a management key as 'Authorization: Bearer mk_...'")
        key = await self.store.find_management_key(hash_secret(secret))
        if key is None or key.revoked_at is not None:
            raise KeyRefused(KeyRefused.INVALID_MANAGEMENT, "unknown or revoked management key")
        return key


class AdminAuth:
    def __init__(self, token_hash: str) -> None:
        self.token_hash = token_hash

    def check(self, token: str | None) -> None:
        if not token or not same_hash(hash_secret(token), self.token_hash):
            raise KeyRefused(KeyRefused.INVALID_ADMIN, "pass the operator token as 'Authorization: Bearer ...'")
