"""Admissions waiting for room while only other requests' holds stand in the way.

Room frees up when a request settles, here or on another instance. A settlement in
this process wakes the longest-waiting few at once; every waiter also looks again
after a short poll (growing, jittered), which is how it learns of settlements on other
instances. Waking a few rather than all keeps a settlement from setting off one
Redis call per waiting request.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque

# Waiters woken by one settlement or release in this process.
WAKE_PER_SETTLE = 4
# The poll grows by this factor after each look that found no room, up to `poll_max`.
GROWTH = 2.0


class Waiters:
    def __init__(self, poll: float, poll_max: float) -> None:
        self.poll = poll
        self.poll_max = poll_max
        self._queue: deque[asyncio.Future] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def next_poll(self, previous: float | None) -> float:
        if previous is None:
            return self.poll
        return min(self.poll_max, previous * GROWTH)

    async def wait(self, timeout: float) -> None:
        """Until a settlement here wakes this waiter, or `timeout` (jittered by up to a fifth) passes."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append(future)
        try:
            await asyncio.wait_for(future, timeout * (0.8 + 0.4 * random.random()))
        except asyncio.TimeoutError:
            pass
        finally:
            if not future.done():
                future.cancel()
            try:
                self._queue.remove(future)
            except ValueError:
                pass

    def wake(self, n: int = WAKE_PER_SETTLE) -> None:
        queue = self._queue
        while n and queue:
            future = queue.popleft()
            if not future.done():
                future.set_result(None)
                n -= 1
