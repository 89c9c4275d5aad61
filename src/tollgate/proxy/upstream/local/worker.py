"""A dedicated thread for blocking model work, and the hand-off back to the event loop.

A model instance owns one `Worker`: jobs run one at a time in submission order
(llama.cpp contexts are not thread-safe, and one generation already uses the
cores we give it). Each job talks to the event loop through its own `Channel`:
the thread `put`s items, which `loop.call_soon_threadsafe` appends to an
asyncio queue; the loop side `get`s them without ever blocking. Cancelling a
channel is how the loop tells a running job to stop at its next step.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class _End:
    """The last item of every job's channel."""

    def __repr__(self) -> str:
        return "END"


END = _End()


@dataclass(frozen=True)
class Failed:
    """The job raised; the loop side re-raises or reports it."""

    error: BaseException


class Channel:
    """One job's items, from the worker thread to the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        # Called on the loop once the job is over, whether or not anyone reads.
        self._on_end = on_end
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        # Items put by the thread but not yet moved to `_items` by the loop.
        self._pending: collections.deque[Any] = collections.deque()
        self._wakeup_scheduled = False
        self._cancel = threading.Event()
        self._done = asyncio.Event()
        # Set by the worker thread when it picks the job up.
        self.started = False

    # --- worker thread side -------------------------------------------------
    def put(self, item: Any) -> None:
        """Hand `item` to the loop. Wake-ups coalesce: while one is scheduled and
        not yet run, further items ride along, so a loop that falls behind (a
        busy machine) catches up in one wake-up instead of one per token."""
        self._pending.append(item)
        if not self._wakeup_scheduled:
            self._wakeup_scheduled = True
            self._call(self._move_pending)

    def end(self) -> None:
        """The job is over (finished, failed or skipped): END follows the last item."""
        self._call(self._end)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._cancel.set()

    def _move_pending(self) -> None:
        # Clear the flag first: an item appended after this line schedules
        # another wake-up, one appended before it is moved by this one.
        self._wakeup_scheduled = False
        while self._pending:
            self._items.put_nowait(self._pending.popleft())

    def _end(self) -> None:
        self._move_pending()
        self._items.put_nowait(END)
        self._done.set()
        if self._on_end is not None:
            self._on_end()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # --- event loop side ----------------------------------------------------
    async def get(self) -> Any:
        """The next item; END once the job is over (and again on every later call)."""
        if self._done.is_set() and self._items.empty():
            return END
        return await self._items.get()

    def get_ready(self) -> list[Any]:
        """The items that have already arrived, without waiting."""
        ready = []
        while not self._items.empty():
            ready.append(self._items.get_nowait())
        return ready

    def cancel(self) -> None:
        self._cancel.set()

    async def stop(self) -> None:
        """Cancel, and wait until a started job has really stopped.

        A job still queued is skipped by the worker, so there is nothing to wait
        for. Does not consume items: another task may still be reading them.
        """
        self.cancel()
        if self.started:
            await self._done.wait()


Job = Callable[[Channel], None]


class Worker:
    """One daemon thread running jobs in order."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Job, Channel] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._busy = False
        self._thread.start()

    @property
    def busy(self) -> bool:
        """A job is running right now (not merely queued)."""
        return self._busy

    def submit(self, job: Job, channel: Channel) -> None:
        self._jobs.put((job, channel))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the worker thread and return its result.

        If the awaiting task is cancelled before `fn` starts, `fn` never runs.
        """
        channel = Channel(asyncio.get_running_loop())
        self.submit(lambda ch: ch.put(fn()), channel)
        try:
            item = await channel.get()
        except asyncio.CancelledError:
            channel.cancel()
            raise
        if isinstance(item, Failed):
            raise item.error
        if item is END:  # cancelled before it ran; not reachable without cancel()
            raise asyncio.CancelledError
        return item

    def _run(self) -> None:
        while True:
            entry = self._jobs.get()
            if entry is None:
                return
            job, channel = entry
            channel.started = True
            if channel.cancelled:
                channel.end()
                continue
            self._busy = True
            try:
                job(channel)
            except BaseException as exc:  # delivered to the loop side, never lost
                log.exception("local model job failed")
                channel.put(Failed(exc))
            finally:
                self._busy = False
                channel.end()

    async def stop(self) -> None:
        """Finish the running and queued jobs, then end the thread."""
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
