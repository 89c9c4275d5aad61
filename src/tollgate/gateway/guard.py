"""Noticing a client that goes away, and stopping its request at once.

Once the request body is read, a watcher waits for the ASGI `http.disconnect`
message and cancels the request's task. The task's own cleanup then aborts
the upstream request (closing its connection is how the upstream learns to
stop) and settles what was already generated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class DisconnectGuard:
    __slots__ = ("_receive", "_watcher", "_done", "gone")

    def __init__(self, receive: Callable[[], Awaitable[dict]]) -> None:
        self._receive = receive
        self._watcher: asyncio.Task | None = None
        self._done = False
        self.gone = False

    def start(self) -> None:
        task = asyncio.current_task()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(task))

    async def _watch(self, task: asyncio.Task | None) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._done and task is not None:
                    self.gone = True
                    task.cancel()
                return

    def stop(self) -> None:
        """The answer is about to complete: a disconnect from now on is the normal end."""
        self._done = True
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
