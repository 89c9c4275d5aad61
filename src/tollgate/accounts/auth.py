"""Who is calling: operator token, management keys (`mk_`), consumption keys (`sk_`).

Consumption keys are checked on every request, so their contexts are cached in memory
(`KeyCache`, bounded). Every process that changes a key, subscription, account or plan
moves the store's change counter (shared memory, read per request at the cost of a memory
read); when it moved, the change log says what changed, and only the contexts built from
that are dropped. So a revoked key or an expired subscription is refused on the very next
request, whichever process made the change, while the rest of the cache stays warm.
A subscription that runs out by time is checked on every request, from the cached context; so is
the grace of a secret that a key rotation replaced (`KeyContext.secret_valid_until`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tollgate.accounts.backoff import FailureBackoff
from tollgate.accounts.key_cache import KeyCache
from tollgate.accounts.key_lookup import KeyLookups
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

# Key contexts kept when the config does not say (`[server] key_cache`).
CACHE_LIMIT = 200_000


def invalid_key() -> KeyRefused:
    return KeyRefused(KeyRefused.INVALID, "invalid API key: pass a tollgate key as 'Authorization: Bearer sk_...'")


class ConsumptionAuth:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time, capacity: int = CACHE_LIMIT) -> None:
        self.store = store
        self.clock = clock
        self.cache = KeyCache(capacity)
        self.lookups = KeyLookups(store)
        self._seq = -1  # the change log is applied to the cache up to this number
        self._catching_up: asyncio.Task | None = None
        self.change_reads = 0  # reads of the change log
        self.resets = 0  # times the whole cache was dropped (the log had moved on too far)

    async def authenticate(self, secret: str | None) -> KeyContext:
        if not secret or not secret.startswith(CONSUMPTION_PREFIX) or len(secret) > 200:
            raise invalid_key()
        seq = self.store.change_seq()
        if seq != self._seq:
            await self._catch_up(seq)
        # Cached by the key as presented: a hit costs one dict lookup, not a SHA-256. The store
        # is only ever asked by hash, and the cache lives in this process's memory only.
        ctx = self.cache.get(secret)
        if ctx is None:
            ctx = await self._find(secret)
        if ctx.key.revoked_at is not None:
            raise KeyRefused(KeyRefused.REVOKED, "this API key has been revoked")
        if ctx.secret_valid_until is not None and self.clock() >= ctx.secret_valid_until:
            raise KeyRefused(KeyRefused.INVALID, "invalid API key: this secret was replaced when the key was rotated "
                                                 "and its grace period has ended; use the new secret")
        if ctx.subscription is not None and not ctx.subscription.is_usable(self.clock()):
            raise KeyRefused(KeyRefused.SUBSCRIPTION_EXPIRED,
                             "the subscription behind this API key has expired; its keys no longer work")
        return ctx

    async def _find(self, secret: str) -> KeyContext:
        """A key that missed the cache, from a (shared, batched) store read that has seen every change applied."""
        ctx, seq = await asyncio.shield(self.lookups.find(secret, self._seq))
        if ctx is None:
            raise invalid_key()
        # A read older than the changes applied meanwhile may hold what they changed: serve it
        # to this request (it raced the change), but do not keep it.
        if seq >= self._seq and self.cache.peek(secret) is None:
            ctx = self.cache.put(secret, ctx)
        return ctx

    async def _catch_up(self, seq: int) -> None:
        """Apply the change log up to at least `seq` (one read at a time, shared by every request waiting)."""
        if seq < self._seq:  # the database was replaced by an older copy: nothing cached can be trusted
            self.cache.clear()
            self.resets += 1
            self._seq = seq
            return
        while self._seq < seq:
            before = self._seq
            if self._catching_up is None:
                self._catching_up = asyncio.get_running_loop().create_task(self._read_changes())
            await asyncio.shield(self._catching_up)
            if self._seq <= before:  # the counter says more than the log has: a replaced database
                self.cache.clear()
                self.resets += 1
                self._seq = seq

    async def _read_changes(self) -> None:
        try:
            if len(self.cache) == 0:  # nothing to drop: skip the read (reads begun before now are not kept)
                self._seq = max(self._seq, self.store.change_seq())
                return
            self.change_reads += 1
            changes = await self.store.changes_since(self._seq)
            if changes.complete:
                for kind, ref in changes.items:
                    self.cache.apply(kind, ref)
            else:
                self.cache.clear()
                self.resets += 1
            self._seq = max(self._seq, changes.last)
        finally:
            self._catching_up = None

    def stats(self) -> dict[str, int]:
        """The key cache's counts, and how often the store was asked (for the operator's metrics)."""
        return {**self.cache.stats().as_dict(), "store_reads": self.lookups.reads,
                "keys_read": self.lookups.keys_read, "change_reads": self.change_reads, "resets": self.resets}


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
