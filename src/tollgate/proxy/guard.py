"""Noticing a client that goes away, and stopping its request at once.

Once the request body is read, a watcher waits for the ASGI `http.disconnect`
message and cancels the request's task. The task's own cleanup then aborts
the upstream request (closing its connection is how the upstream learns to
stop) and settles what was already generated.

Most answers are done in a few milliseconds, and a watcher task (or even a
timer) per request is a noticeable share of the gateway's own cost. So one
sweep, every WATCH_AFTER seconds, gives a watcher to each request that has
been running at least that long; a client gone earlier is noticed then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

WATCH_AFTER = 0.02


class DisconnectGuard:
    __slots__ = ("_receive", "_task", "_watcher", "_done", "_watch_list", "gone")

    def __init__(self, receive: Callable[[], Awaitable[dict]], watch: Watch) -> None:
        self._receive = receive
        self._task: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._done = False
        self._watch_list = watch
        self.gone = False

    def start(self) -> None:
        self._task = asyncio.current_task()
        self._watch_list.add(self)

    def spawn(self) -> None:
        """Called by the sweep: from now on, a task waits for the client to go away."""
        if not self._done and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._done and self._task is not None:
                    self.gone = True
                    self._task.cancel()
                return

    def stop(self) -> None:
        """The answer is about to complete: a disconnect from now on is the normal end."""
        if self._done:
            return
        self._done = True
        self._watch_list.discard(self)
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    def absorb(self) -> bool:
        """After catching CancelledError: True if it was our disconnect (then it is consumed)."""
        if not self.gone:
            return False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True


class Watch:
    """The requests in flight, and the sweep that gives the long-running ones a watcher."""

    def __init__(self, interval: float = WATCH_AFTER) -> None:
        self.interval = interval
        self._new: set[DisconnectGuard] = set()
        self._old: set[DisconnectGuard] = set()
        self._sweeper: asyncio.Task | None = None

    def guard(self, receive: Callable[[], Awaitable[dict]]) -> DisconnectGuard:
        return DisconnectGuard(receive, self)

    def add(self, guard: DisconnectGuard) -> None:
        self._new.add(guard)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def discard(self, guard: DisconnectGuard) -> None:
        self._new.discard(guard)
        self._old.discard(guard)

    async def _sweep(self) -> None:
        try:
            while self._new or self._old:
                await asyncio.sleep(self.interval)
                # Guards seen by the previous sweep have run at least one interval: watch them.
                for guard in self._old:
                    guard.spawn()
                self._old, self._new = self._new, set()
        finally:
            self._sweeper = None
