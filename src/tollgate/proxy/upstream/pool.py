"""A bounded keep-alive pool: at most `limit` connections to one upstream, idle and busy together.

Why bounded: an upstream (a vLLM server, a hosted provider) serves only so many
requests at once; opening more sockets just moves the queue into its accept
backlog, where no timeout of ours applies and nothing is fair. So a request that
finds the pool full waits here, first come first served, for a connection to be
returned or for a slot to be freed by one that closed.

Ownership is exact, so nothing leaks under cancellation: a slot is held either by
a reservation (a connect in progress, owned by the request that reserved it) or
by an open connection (released once, when the pool forgets it). A freed slot
or returned connection goes straight to the first live waiter, never back into
the pool first, so a newcomer can never overtake the queue; a waiter that was
handed something but is cancelled or expires before it runs gives it back.

The uncontended path is cheap on purpose (it runs on every request): taking an
idle connection is a list pop, reserving a slot is one comparison and one add;
only a request that must wait creates a future and a timer.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, Protocol, TypeVar


class PooledConnection(Protocol):
    closed: bool

    def abort(self) -> None:
        """Close at once; the connection must then call `ConnectionPool.forget` on itself."""


C = TypeVar("C", bound=PooledConnection)


class ConnectionPool(Generic[C]):
    """Slots and idle connections of one upstream, with a FIFO queue of requests waiting for either."""

    __slots__ = ("limit", "max_idle", "used", "idle", "open", "waiters")

    def __init__(self, limit: int, max_idle: int) -> None:
        self.limit = limit
        self.max_idle = min(max_idle, limit)
        self.used = 0  # slots held: open connections + connects in progress
        self.idle: list[C] = []
        self.open: set[C] = set()
        # Each waiter's future gets a connection (reuse it) or None (a slot: open a new one).
        self.waiters: collections.deque[asyncio.Future[C | None]] = collections.deque()

    @property
    def waiting(self) -> int:
        """Requests queued for a connection right now (expired and cancelled ones are skipped later)."""
        return sum(1 for fut in self.waiters if not fut.done())

    # -- taking ---------------------------------------------------------------

    def take_idle(self) -> C | None:
        """An idle kept-alive connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def reserve(self) -> bool:
        """Take a slot for a new connection if the limit allows; the caller must `adopt` or `release` it."""
        if self.used < self.limit:
            self.used += 1
            return True
        return False

    async def wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> C | None:
        """Queue until a connection (returned) or a slot (None: connect, then `adopt` or `release`) is ours.

        Raises TimeoutError at `deadline` (loop time). Whatever was handed over
        is given back if the wait ends any other way, cancellation included.
        """
        fut: asyncio.Future[C | None] = loop.create_future()
        self.waiters.append(fut)
        timer = loop.call_at(deadline, _expire, fut)
        try:
            return await fut
        except BaseException:
            # Cancelled (the client went away) or expired, possibly just after a hand-over:
            # what was handed to us must not stay ours. A future still queued is skipped later.
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._give_back(fut.result())
            raise
        finally:
            timer.cancel()

    def _give_back(self, got: C | None) -> None:
        if got is None:
            self.release()
        elif got.closed:
            pass  # it forgot itself already, and its slot went on to the next in line
        else:
            self.put(got)

    # -- returning ------------------------------------------------------------

    def adopt(self, conn: C) -> None:
        """A reserved slot's connection is open: the slot is now the connection's, freed by `forget`."""
        self.open.add(conn)

    def put(self, conn: C) -> None:
        """A connection finished its request and may be reused: to the first waiter, else idle."""
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        if len(self.idle) < self.max_idle:
            self.idle.append(conn)
        else:
            conn.abort()

    def release(self) -> None:
        """Free one slot (a connect that failed, a connection that closed): to the first waiter, else free."""
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes on without ever being free
                return
        self.used -= 1

    def forget(self, conn: C) -> None:
        """A connection closed. Safe to call more than once: its slot is released the first time only."""
        if conn in self.open:
            self.open.discard(conn)
            if conn in self.idle:
                self.idle.remove(conn)
            self.release()

    def close(self, error: BaseException) -> None:
        """Fail every waiter with `error` (the upstream is shutting down)."""
        waiters, self.waiters = self.waiters, collections.deque()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(error)
        self.idle.clear()


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())
