"""Back-off after repeated failed credential checks, per client address, in bounded memory.

The operator token guards the whole operator plane, so guessing it must not be
cheap to repeat: an address gets a few free mistakes, then waits before each
further try, twice as long each time (up to a cap). A right credential clears
the address's record; a quiet spell forgets it. At most `max_tracked`
addresses are remembered: past that, the one that failed least recently is
forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5
FIRST_DELAY = 1.0
MAX_DELAY = 900.0
FORGET_AFTER = 3600.0
MAX_TRACKED = 10_000


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class FailureBackoff:
    def __init__(self, *, free: int = FREE_FAILURES, first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY,
                 forget_after: float = FORGET_AFTER, max_tracked: int = MAX_TRACKED,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free = free
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.forget_after = max(forget_after, max_delay)
        self.max_tracked = max_tracked
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently failed first

    def __len__(self) -> int:
        return len(self._records)

    def wait(self, address: str) -> float:
        """Seconds before `address` may try again (0: now)."""
        record = self._records.get(address)
        if record is None:
            return 0.0
        now = self.clock()
        if now - record.last_failure >= self.forget_after:
            del self._records[address]
            return 0.0
        return max(0.0, record.blocked_until - now)

    def failed(self, address: str) -> None:
        now = self.clock()
        record = self._records.pop(address, None)
        if record is None or now - record.last_failure >= self.forget_after:
            record = _Record()
        record.failures += 1
        record.last_failure = now
        beyond = record.failures - self.free
        if beyond >= 0:
            record.blocked_until = now + min(self.max_delay, self.first_delay * 2 ** min(beyond, 32))
        self._records[address] = record
        while len(self._records) > self.max_tracked:
            self._records.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._records.pop(address, None)
