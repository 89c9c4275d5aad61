"""The two ways an agent performs I/O, so that one driver loop serves sync and async clients.

`loop.Agent` writes its driver once, as coroutines, and hands them an I/O flavour:

- `Awaiting` (for `AsyncAgent`) awaits what the client and the tools return, and runs
  blocking work (the `/v1/usage` read, queue writes) on a worker thread so the caller's
  event loop never stalls.
- `Blocking` (for the sync `Agent`) calls and returns. Its coroutines never suspend, so
  `run_blocking` finishes them with a single `send(None)`: no event loop is created, and a
  sync agent works the same inside or outside one (in a tool, in a notebook, in a thread).

The driver's decisions live in `core.drive()`; this module only says how to wait.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class IOFlavour(Protocol):
    """What the shared driver needs from a sync or async world."""

    async def result(self, value: Any, refusal: str) -> Any:
        """`value`, awaited if the flavour awaits; `refusal` is the TypeError text if it cannot."""

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking `fn(*args)` without stalling an event loop."""

    async def sleep(self, seconds: float) -> None:
        """Wait between retries."""


class Blocking:
    """I/O for a sync client: plain calls. An awaitable here means an async client or tool."""

    def __init__(self, sleep: Callable[[float], Any] | None = None) -> None:
        self._sleep = sleep or time.sleep

    async def result(self, value: Any, refusal: str) -> Any:
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # never awaited: close it so Python does not warn about it later
            raise TypeError(refusal)
        return value

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    async def sleep(self, seconds: float) -> None:
        self._sleep(seconds)


class Awaiting:
    """I/O for an async client: await results, push blocking work to a thread."""

    def __init__(self, sleep: Callable[[float], Any] | None = None) -> None:
        self._sleep = sleep or asyncio.sleep

    async def result(self, value: Any, refusal: str) -> Any:
        return await value if inspect.isawaitable(value) else value

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def sleep(self, seconds: float) -> None:
        pending = self._sleep(seconds)
        if inspect.isawaitable(pending):
            await pending


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine driven by `Blocking` to its end, without an event loop.

    Every await under `Blocking` completes at once, so the coroutine returns on its first
    step. If it ever suspends (something awaited real async work), that is a bug: it is
    closed and reported rather than left half-run.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a sync agent's operation suspended on async work; use AsyncAgent")
