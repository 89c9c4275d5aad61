"""When a failed delivery is tried again: exponential back-off with jitter, and when it is given up on."""

from __future__ import annotations

import random
from collections.abc import Callable


def retry_delay(failures: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the `failures`-th failed attempt (1, 2, ...).

    `base` doubled for each failure before this one, at most `cap`; then "equal jitter": a random
    point between half of that and all of it, so that receivers coming back from an outage are not
    met by every sender at the same instant, and no retry comes sooner than half the schedule.
    """
    delay = min(cap, base * 2.0 ** min(max(failures, 1) - 1, 64))
    return delay / 2 + rand() * delay / 2


def next_attempt(now: float, created_at: float, failures: int, base: float, cap: float, max_age: float,
                 rand: Callable[[], float] = random.random) -> float | None:
    """When to try again after the `failures`-th failure, or None to give up: the next try would come
    after the event's `max_age`."""
    at = now + retry_delay(failures, base, cap, rand)
    return at if at <= created_at + max_age else None
