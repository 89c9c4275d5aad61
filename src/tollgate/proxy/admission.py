"""Admission: the per-minute limits, then a reservation of the request's worst-case cost.

The reservation is what makes the budget a hard cap: a request is only sent
upstream once its worst case (prompt bound + every output token it may
produce) is held on every pool it draws from. When less than that is left,
the request still goes, with `max_tokens` lowered to what the grant can pay.
A request whose smallest cost (prompt bound + one output token) is above a
windowed pool's whole limit can never fit, in this window or any other: it is
refused first (`RequestExceedsBudget`), before it takes from the rate buckets.

The rate limiter is either the in-process one (plain calls: the embedded hot path
stays free of awaits and tasks; a key's buckets are in its `KeyState`, with its pools
and limits, so a request finds all three in one lookup), or folded into a ledger that `takes_rate` (the Redis
ledger of the scaled configuration: the bucket check rides in the reserve script and
the correction in the settle script, one round trip each), or a shared one whose calls
are coroutines (awaited at admission; their corrections run as background tasks).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from tollgate.domain.accounts import KeyContext
from tollgate.domain.grants import Grant
from tollgate.domain.lru import LRU, CacheStats
from tollgate.domain.pricing import output_room
from tollgate.domain.pools import Pool, pools_for
from tollgate.domain.refusals import RequestExceedsBudget
from tollgate.ledger.protocol import BudgetLedger, RateCharge
from tollgate.ledger.ratelimit import KeyBuckets, RateLimiter
from tollgate.proxy.models import ServedModel

log = logging.getLogger("tollgate.proxy")

# The smallest answer worth sending: a request that cannot afford this many output
# tokens on top of its prompt is refused rather than sent.
MIN_OUTPUT_TOKENS = 1
# Keys whose pools and limits are kept when the config does not say (`[server] key_cache`);
# the least recently used is dropped beyond this.
DERIVED_LIMIT = 200_000


class SharedLimiter(Protocol):
    """Per-key buckets shared by every instance (tollgate.ledger.redis.RedisRateLimiter): RateLimiter's
    methods, as coroutines."""

    async def admit(self, key_id: str, rpm: int, tpm: int, tokens: int) -> None: ...
    async def settle(self, key_id: str, tpm: int, extra_tokens: int) -> None: ...
    async def refund(self, key_id: str, rpm: int, tpm: int, tokens: int) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyLimits:
    rpm: int
    tpm: int


@dataclass(slots=True)
class KeyState:
    """What a key's requests reuse: its pools and limits, built from `ctx` (current while the auth layer hands
    out this very context), and its buckets of the in-process rate limiter (None with a shared limiter)."""

    ctx: KeyContext
    pools: tuple[Pool, ...]
    limits: KeyLimits
    buckets: KeyBuckets | None


@dataclass(slots=True)
class Admission:
    ctx: KeyContext
    pools: tuple[Pool, ...]
    grant: Grant
    prompt_bound: int
    rate_tokens: int
    limits: KeyLimits
    buckets: KeyBuckets | None = None


def output_allowance(grant: Grant, model: ServedModel, prompt_bound: int, cap: int) -> int:
    """The most output tokens (up to `cap`) whose worst-case cost on `model` fits in the grant
    (the prompt at its dearest rate: a cache write, the tier its bound reaches; domain/pricing.py)."""
    return output_room(model.config.price, grant.amount, prompt_bound, cap)


class Admitter:
    def __init__(self, ledger: BudgetLedger, limiter: RateLimiter | SharedLimiter, credit_limits: KeyLimits,
                 capacity: int = DERIVED_LIMIT) -> None:
        self.ledger = ledger
        self.limiter = limiter
        # Decided once: the in-process limiter keeps its plain calls on the hot path; a ledger that takes
        # the rate charge itself makes the limiter unused.
        self._folded = bool(getattr(ledger, "takes_rate", False))
        shared = not self._folded and inspect.iscoroutinefunction(limiter.admit)
        self._shared: SharedLimiter | None = limiter if shared else None  # type: ignore[assignment]
        self._background: set[asyncio.Task] = set()  # the shared limiter's corrections in flight
        self.credit_limits = credit_limits
        # Per key, its `KeyState`, so that a request does not rebuild its pools and limits, and finds its
        # rate buckets in the same place. Contexts are frozen snapshots, replaced as a whole by the auth
        # layer when anything in them changes: an entry is current while it holds this very context (a
        # replaced one keeps its buckets). Sized like the key cache, so that every key whose context is
        # cached keeps its entry too.
        self._local: RateLimiter | None = limiter if not self._folded and not shared else None  # type: ignore[assignment]
        self._derived: LRU[str, KeyState] = LRU(capacity)

    def limits(self, ctx: KeyContext) -> KeyLimits:
        if ctx.plan is not None and ctx.key.type == "subscription":
            return KeyLimits(ctx.plan.rpm, ctx.plan.tpm)
        return self.credit_limits

    def key_state(self, ctx: KeyContext) -> KeyState:
        """The key's `KeyState`, built once per context (one built from a replaced context hands on its buckets)."""
        state = self._derived.get(ctx.key.id)
        if state is None or state.ctx is not ctx:
            buckets = None
            if state is not None:  # built from a context that has since been replaced
                self._derived.invalidate(ctx.key.id)
                buckets = state.buckets
            limits = self.limits(ctx)
            if buckets is None and self._local is not None:
                buckets = self._local.buckets(limits.rpm, limits.tpm)
            state = KeyState(ctx, pools_for(ctx), limits, buckets)
            self._derived.put(ctx.key.id, state)
        return state

    def recent_pools(self, n: int) -> list[tuple[str, tuple[Pool, ...]]]:
        """(key id, its pools) of the `n` keys that sent requests most recently, newest first (for the
        per-key budget gauges of `/metrics`)."""
        return [(key_id, state.pools) for key_id, state in self._derived.recent(n)]

    def cache_stats(self) -> CacheStats:
        """Counts of the per-key pools and limits (an entry found for a replaced context: a hit and an invalidation)."""
        return self._derived.stats()

    async def admit(self, ctx: KeyContext, model: ServedModel, prompt_bound: int, output_cap: int,
                    choices: int = 1) -> Admission:
        """Hold the worst case of `prompt_bound` in and up to `output_cap` out, or raise a refusal.

        The least it holds is the prompt and one output token for each of `choices` answers.
        """
        state = self.key_state(ctx)
        pools, limits = state.pools, state.limits
        minimum = model.cost(prompt_bound, min(MIN_OUTPUT_TOKENS * choices, output_cap))
        for pool in pools:
            # Larger than a window's whole limit: no reset makes it fit (credits can be topped up).
            if minimum > pool.limit and pool.window is not None:
                raise RequestExceedsBudget(pool, minimum)
        if self._folded:  # one atomic step: a rate refusal holds nothing, a budget refusal takes no tokens
            charge = RateCharge(ctx.key.id, limits.rpm, limits.tpm, prompt_bound)
            grant = await self.ledger.reserve(pools, model.cost(prompt_bound, output_cap), minimum, charge)
            return Admission(ctx, pools, grant, prompt_bound, prompt_bound, limits)
        local, shared, buckets = self._local, self._shared, state.buckets
        if local is not None and buckets is not None:
            local.admit(buckets, limits.rpm, limits.tpm, prompt_bound)
        elif shared is not None:
            await shared.admit(ctx.key.id, limits.rpm, limits.tpm, prompt_bound)
        want = model.cost(prompt_bound, output_cap)
        try:
            grant = await self.ledger.reserve(pools, want, minimum)
        except BaseException:
            if local is not None and buckets is not None:
                local.refund(buckets, limits.rpm, limits.tpm, prompt_bound)
            elif shared is not None:
                self._later(shared.refund(ctx.key.id, limits.rpm, limits.tpm, prompt_bound))
            raise
        return Admission(ctx, pools, grant, prompt_bound, prompt_bound, limits, buckets)

    def settle_rate(self, admission: Admission, input_tokens: int, output_tokens: int) -> RateCharge | None:
        """Correct the token bucket with the real usage (it took the prompt bound at admission).

        For a ledger that takes the rate charge, returns the correction for its settle (None when there
        is nothing to correct) instead of applying it here.
        """
        extra = input_tokens + output_tokens - admission.rate_tokens
        if self._folded:
            limits = admission.limits
            return RateCharge(admission.ctx.key.id, limits.rpm, limits.tpm, extra) if extra else None
        if self._local is not None and admission.buckets is not None:
            self._local.settle(admission.buckets, admission.limits.tpm, extra)
        elif self._shared is not None and extra:
            self._later(self._shared.settle(admission.ctx.key.id, admission.limits.tpm, extra))
        return None

    def _later(self, correction: Coroutine[Any, Any, None]) -> None:
        """Run a shared bucket's correction in the background (kept referenced until it ends)."""
        task = asyncio.get_running_loop().create_task(correction)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a rate bucket correction failed: %r", task.exception())
