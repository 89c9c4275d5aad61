"""Per-key requests-per-minute and tokens-per-minute, as buckets that refill over a minute.

tpm takes the input estimate at admission and the output at settlement, so a
bucket may go below zero after a long answer; the next request then waits for
the refill. A request larger than the whole bucket is admitted when the bucket
is full, so no prompt is refused forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tollgate.domain.refusals import RateLimited


@dataclass(slots=True)
class _Bucket:
    level: float
    stamp: float

    def refill(self, capacity: int, now: float) -> None:
        if now > self.stamp:
            self.level = min(float(capacity), self.level + (now - self.stamp) * capacity / 60.0)
            self.stamp = now


class RateLimiter:
    """In-process buckets for one gateway instance (a Redis limiter shares them across instances)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._rpm: dict[str, _Bucket] = {}
        self._tpm: dict[str, _Bucket] = {}

    def admit(self, key_id: str, rpm: int, tpm: int, tokens: int) -> None:
        """Take one request and `tokens` input tokens, or raise RateLimited with the wait."""
        now = self.clock()
        req = self._rpm.get(key_id)
        if req is None:
            req = self._rpm[key_id] = _Bucket(float(rpm), now)
        req.refill(rpm, now)
        tok = self._tpm.get(key_id)
        if tok is None:
            tok = self._tpm[key_id] = _Bucket(float(tpm), now)
        tok.refill(tpm, now)
        if req.level < 1.0:
            raise RateLimited("rpm", rpm, (1.0 - req.level) * 60.0 / rpm)
        needed = min(float(tokens), float(tpm))
        if tok.level < needed:
            raise RateLimited("tpm", tpm, (needed - tok.level) * 60.0 / tpm)
        req.level -= 1.0
        tok.level -= tokens

    def settle(self, key_id: str, tpm: int, extra_tokens: int) -> None:
        """Adjust the token bucket once the real usage is known (output, or a corrected input)."""
        tok = self._tpm.get(key_id)
        if tok is None or extra_tokens == 0:
            return
        tok.refill(tpm, self.clock())
        tok.level = min(float(tpm), tok.level - extra_tokens)

    def refund(self, key_id: str, rpm: int, tpm: int, tokens: int) -> None:
        """Give back what `admit` took, for a request refused later for another reason."""
        req, tok = self._rpm.get(key_id), self._tpm.get(key_id)
        if req is not None:
            req.level = min(float(rpm), req.level + 1.0)
        if tok is not None:
            tok.level = min(float(tpm), tok.level + tokens)
