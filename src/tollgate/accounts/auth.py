"""Who is calling: operator token, management keys (`mk_`), consumption keys (`sk_`).

Consumption keys are checked on every request, so their context is cached in
memory; the cache is dropped whenever the store's change counter moves, which
includes edits made by another process (the CLI), so a revoked key or an
expired subscription is refused on the very next request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tollgate.accounts.backoff import FailureBackoff
from tollgate.domain.accounts import KeyContext, ManagementKey
from tollgate.domain.refusals import KeyRefused, TooManyFailures
from tollgate.domain.secrets import (
    CONSUMPTION_PREFIX,
    MAKE_TOKEN,
    MANAGEMENT_PREFIX,
    hash_operator_token,
    hash_secret,
    is_legacy_token_hash,
    operator_token_problem,
    same_hash,
    verify_operator_token,
)
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


# The longest operator token worth hashing: longer ones are wrong without a scrypt run.
ADMIN_TOKEN_MAX = 512
# Scrypt checks at once (each takes about 32 MiB and 0.1 s of a core, off the event loop).
ADMIN_CHECK_SLOTS = 2


def invalid_admin_token() -> KeyRefused:
    return KeyRefused(KeyRefused.INVALID_ADMIN, "pass the operator token as 'Authorization: Bearer ...'")


class AdminAuth:
    """The operator token, checked against its salted scrypt hash, with back-off per client address.

    Scrypt is slow on purpose, so it runs on a thread (a few at a time) and only
    the first check of the right token pays for it: the verified token is then
    remembered in memory by its SHA-256. Wrong tokens always pay, and after a few
    of them from one address that address waits (`FailureBackoff`), right token or not.

    A hash stored by an older tollgate (unsalted SHA-256) still lets its token in
    once: that check stores the scrypt hash in its place (`upgrade`), unless the
    token is too weak to keep, which is refused with how to replace it.
    """

    def __init__(self, stored: str, *, upgrade: Callable[[str], Awaitable[None]] | None = None,
                 known: str | None = None, backoff: FailureBackoff | None = None) -> None:
        """`stored`: the stored hash; `known`: the token itself when this process was given it (no scrypt then)."""
        self.stored = stored
        self.upgrade = upgrade
        self.backoff = backoff if backoff is not None else FailureBackoff()
        self._verified: str | None = hash_secret(known) if known else None
        self._slots = asyncio.Semaphore(ADMIN_CHECK_SLOTS)

    async def check(self, token: str | None, client: str | None = None) -> None:
        """Return if `token` is the operator token; refuse otherwise (`client`: the caller's address)."""
        address = client or "unknown"
        wait = self.backoff.wait(address)
        if wait > 0:
            raise TooManyFailures(wait)
        if not token:
            raise invalid_admin_token()
        if await self._verify(token):
            self.backoff.succeeded(address)
            return
        self.backoff.failed(address)
        raise invalid_admin_token()

    async def _verify(self, token: str) -> bool:
        if len(token) > ADMIN_TOKEN_MAX:
            return False
        fast = hash_secret(token)
        if self._verified is not None and same_hash(fast, self._verified):
            return True
        if is_legacy_token_hash(self.stored):
            if not same_hash(fast, self.stored):
                return False
            await self._upgrade(token)
        else:
            async with self._slots:
                if not await asyncio.to_thread(verify_operator_token, token, self.stored):
                    return False
        self._verified = fast
        return True

    async def _upgrade(self, token: str) -> None:
        """Replace a legacy SHA-256 hash by the scrypt hash of its (right) token."""
        problem = operator_token_problem(token)
        if problem is not None:
            raise KeyRefused(KeyRefused.INVALID_ADMIN,
                             f"the operator token stored by an older tollgate {problem}: replace it with "
                             f"`tollgate admin-token --rotate`, or set TOLLGATE_ADMIN_TOKEN to a strong one ({MAKE_TOKEN})")
        async with self._slots:
            stored = await asyncio.to_thread(hash_operator_token, token)
        if self.upgrade is not None:
            await self.upgrade(stored)
        self.stored = stored
