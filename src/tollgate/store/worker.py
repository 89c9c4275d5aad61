"""One thread that owns a database connection, and the lightest hand-off to it from asyncio.

A ThreadPoolExecutor wraps every call in two futures and a chain between them;
on the request path (every settlement waits for one commit) that bookkeeping
is a visible share of the gateway's CPU. Here a call is a tuple on a queue
and a single `call_soon_threadsafe` back.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tollgate.store")


def _resolve(future: asyncio.Future, error: BaseException | None, result: Any) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DatabaseThread:
    def __init__(self, name: str, idle: Callable[[], None] | None = None, idle_every: float = 1.0) -> None:
        """`idle`: called on the thread whenever it has had no call for `idle_every` seconds (work that
        waits for a quiet moment but must not wait for the next call, such as a roll-up)."""
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = idle
        self._idle_every = idle_every
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _next(self) -> Any:
        if self._idle is None:
            return self._queue.get()
        while True:
            try:
                return self._queue.get(timeout=self._idle_every)
            except queue.Empty:
                try:
                    self._idle()
                except Exception:  # the thread serves the calls whatever the idle work does
                    log.exception("the database thread's idle work failed; it is tried again when idle")

    def _serve(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            fn, loop, future = item
            try:
                result, error = fn(), None
            except BaseException as exc:  # handed to the caller, never lost
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_resolve, future, error, result)
            except RuntimeError:
                pass  # the caller's loop is closed: nobody is waiting any more

    def run(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Run `fn()` on the thread; the returned future resolves on the caller's loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((fn, loop, future))
        return future

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join()
