"""Per-key requests-per-minute and tokens-per-minute, as buckets that refill over a minute.

tpm takes the input estimate at admission and the output at settlement, so a
bucket may go below zero after a long answer; the next request then waits for
the refill. A request larger than the whole bucket is admitted when the bucket
is full, so no prompt is refused forever.

A key's two buckets are one `KeyBuckets`, kept with the rest of what its requests reuse
(proxy/admission.py), in the bounded map of recently active keys: a map of buckets of its own
grew by two entries for every key ever seen, and with a hundred thousand keys in use each
lookup in it was a trip to main memory (bench/many_keys.py, issue 18). A key that leaves that
map has been idle longer than a full refill takes at any load the gateway serves, so it comes
back to full buckets, which is where the refill would have brought it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tollgate.domain.refusals import RateLimited


@dataclass(slots=True)
class KeyBuckets:
    """One key's levels (requests, tokens), each with when it was last refilled."""

    requests: float
    requests_at: float
    tokens: float
    tokens_at: float


def _refill_tokens(b: KeyBuckets, tpm: int, now: float) -> None:
    if now > b.tokens_at:
        b.tokens = min(float(tpm), b.tokens + (now - b.tokens_at) * tpm / 60.0)
        b.tokens_at = now


class RateLimiter:
    """In-process buckets for one gateway instance (a Redis limiter shares them across instances)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock

    def buckets(self, rpm: int, tpm: int) -> KeyBuckets:
        """Full buckets for a key seen for the first time (or again after a long rest)."""
        now = self.clock()
        return KeyBuckets(float(rpm), now, float(tpm), now)

    def admit(self, b: KeyBuckets, rpm: int, tpm: int, tokens: int) -> None:
        """Take one request and `tokens` input tokens, or raise RateLimited with the wait."""
        now = self.clock()
        if now > b.requests_at:
            b.requests = min(float(rpm), b.requests + (now - b.requests_at) * rpm / 60.0)
            b.requests_at = now
        _refill_tokens(b, tpm, now)
        if b.requests < 1.0:
            raise RateLimited("rpm", rpm, (1.0 - b.requests) * 60.0 / rpm)
        needed = min(float(tokens), float(tpm))
        if b.tokens < needed:
            raise RateLimited("tpm", tpm, (needed - b.tokens) * 60.0 / tpm)
        b.requests -= 1.0
        b.tokens -= tokens

    def settle(self, b: KeyBuckets, tpm: int, extra_tokens: int) -> None:
        """Adjust the token bucket once the real usage is known (output, or a corrected input)."""
        if extra_tokens == 0:
            return
        _refill_tokens(b, tpm, self.clock())
        b.tokens = min(float(tpm), b.tokens - extra_tokens)

    def refund(self, b: KeyBuckets, rpm: int, tpm: int, tokens: int) -> None:
        """Give back what `admit` took, for a request refused later for another reason."""
        b.requests = min(float(rpm), b.requests + 1.0)
        b.tokens = min(float(tpm), b.tokens + tokens)
