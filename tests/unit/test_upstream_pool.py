"""`max_connections`: the HTTP upstream client keeps at most that many sockets, and waiters never leak a slot.

The upstream is a real HTTP/1.1 server on a local socket (asyncio streams), which
counts the connections it sees and holds its answers at a gate until the test
opens it. Every wait is bounded; nothing asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tollgate.config.schema import UpstreamConfig
from tollgate.proxy.upstream.base import UpstreamError
from tollgate.proxy.upstream.http import HTTPUpstream

BOUND = 10.0  # seconds: the most any single wait in these tests may take before the test fails


class GatedServer:
    """POST /v1/plain echoes the body; /v1/stream answers in chunks; /v1/stall sends one chunk, then
    waits for the client to leave; /v1/close answers and closes. Every answer waits for `gate`."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.active = 0  # connections open right now
        self.peak = 0  # the most open at once
        self.accepted = 0
        self.held = 0  # requests received and waiting at the gate
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.gate.set()
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.wait_for(self._server.wait_closed(), BOUND)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                path = head.split(b" ", 2)[1]
                self.held += 1
                await self.gate.wait()
                self.held -= 1
                if not await self._answer(path, body, reader, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.active -= 1
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, path: bytes, body: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to close."""
        if path in (b"/v1/plain", b"/v1/close"):
            answer = b"echo:" + body
            close = path == b"/v1/close"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(answer)).encode() + (b"\r\nConnection: close" if close else b"")
                         + b"\r\n\r\n" + answer)
            await writer.drain()
            return not close
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        parts = [b"data: %d\n\n" % i for i in range(3)]
        for part in parts if path == b"/v1/stream" else parts[:1]:
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0)
        if path == b"/v1/stall":
            await reader.read()  # until the client aborts
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def upstream_for(server: GatedServer, max_connections: int, connect_timeout: float = 5.0) -> HTTPUpstream:
    return HTTPUpstream(UpstreamConfig(name="pooled", base_url=f"http://127.0.0.1:{server.port}/v1",
                                       max_connections=max_connections, connect_timeout=connect_timeout,
                                       first_byte_timeout=60.0, timeout=120.0))


@contextlib.asynccontextmanager
async def serving(max_connections: int, connect_timeout: float = 5.0) -> AsyncIterator[tuple[GatedServer, HTTPUpstream]]:
    server = GatedServer()
    await server.start()
    upstream = upstream_for(server, max_connections, connect_timeout)
    await upstream.start()
    try:
        yield server, upstream
    finally:
        await upstream.close()
        await server.stop()


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.002)
    await asyncio.wait_for(poll(), BOUND)


async def post(upstream: HTTPUpstream, path: str, body: bytes) -> tuple[int, bytes]:
    response = await upstream.send(path, body)
    return response.status, await response.read()


def slots_held(upstream: HTTPUpstream) -> int:
    pool = upstream._pool
    assert pool.used == len(pool.open), "a slot is held by no connection"
    return pool.used


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 4 * BOUND))


# -- the bound ----------------------------------------------------------------------------------


def test_six_slow_requests_share_two_connections() -> None:
    async def scenario() -> None:
        async with serving(max_connections=2) as (server, upstream):
            server.gate.clear()
            tasks = [asyncio.create_task(post(upstream, "/plain", b"%d" % i)) for i in range(6)]
            await until(lambda: server.held == 2 and upstream._pool.waiting == 4)
            server.gate.set()
            results = await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
            assert results == [(200, b"echo:%d" % i) for i in range(6)]
            assert server.peak == 2
            assert server.accepted == 2  # the waiters were handed the same two connections
            assert slots_held(upstream) == 2 and upstream._pool.waiting == 0

    run(scenario)


def test_a_closed_connection_frees_its_slot() -> None:
    async def scenario() -> None:
        async with serving(max_connections=1) as (server, upstream):
            for i in range(3):
                assert await asyncio.wait_for(post(upstream, "/close", b"%d" % i), BOUND) == (200, b"echo:%d" % i)
            assert server.accepted == 3
            await until(lambda: slots_held(upstream) == 0)

    run(scenario)


# -- waiters that give up -----------------------------------------------------------------------


async def full_limit_usable(server: GatedServer, upstream: HTTPUpstream, limit: int) -> None:
    """`limit` requests at once all reach the server: no slot was left behind."""
    server.gate.clear()
    tasks = [asyncio.create_task(post(upstream, "/plain", b"again")) for _ in range(limit)]
    await until(lambda: server.held == limit)
    server.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*tasks), BOUND) == [(200, b"echo:again")] * limit


def test_a_waiter_past_its_connect_timeout_gets_a_timeout_and_holds_nothing() -> None:
    async def scenario() -> None:
        async with serving(max_connections=2, connect_timeout=0.2) as (server, upstream):
            server.gate.clear()
            holders = [asyncio.create_task(post(upstream, "/plain", b"held")) for _ in range(2)]
            await until(lambda: server.held == 2)
            with pytest.raises(UpstreamError) as caught:
                await asyncio.wait_for(upstream.send("/plain", b"late"), BOUND)
            assert caught.value.kind == "timeout"
            assert slots_held(upstream) == 2 and upstream._pool.waiting == 0
            server.gate.set()
            assert await asyncio.wait_for(asyncio.gather(*holders), BOUND) == [(200, b"echo:held")] * 2
            await full_limit_usable(server, upstream, 2)
            assert server.peak == 2

    run(scenario)


def test_a_cancelled_waiter_holds_nothing() -> None:
    async def scenario() -> None:
        async with serving(max_connections=2) as (server, upstream):
            server.gate.clear()
            holders = [asyncio.create_task(post(upstream, "/plain", b"held")) for _ in range(2)]
            await until(lambda: server.held == 2)
            waiter = asyncio.create_task(post(upstream, "/plain", b"gone"))
            await until(lambda: upstream._pool.waiting == 1)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(waiter, BOUND)
            assert upstream._pool.waiting == 0 and slots_held(upstream) == 2
            server.gate.set()
            assert await asyncio.wait_for(asyncio.gather(*holders), BOUND) == [(200, b"echo:held")] * 2
            await full_limit_usable(server, upstream, 2)
            assert server.peak == 2

    run(scenario)


@pytest.mark.parametrize("path", ["/plain", "/close"])
def test_a_waiter_cancelled_just_after_the_hand_over_passes_it_on(path: str) -> None:
    """The first request, woken before the second, cancels it in the very step its connection
    (keep-alive) or its freed slot (closed) was handed to it: the third must still get it."""
    async def scenario() -> None:
        async with serving(max_connections=1, connect_timeout=2.0) as (server, upstream):
            server.gate.clear()
            second: asyncio.Task | None = None

            async def first() -> int:
                response = await upstream.send(path, b"first")
                assert second is not None and not second.done()
                second.cancel()  # its hand-over is done, its wake-up not yet run
                await response.read()
                return response.status

            first_task = asyncio.create_task(first())
            await until(lambda: server.held == 1)
            second = asyncio.create_task(post(upstream, path, b"second"))
            third = asyncio.create_task(post(upstream, path, b"third"))
            await until(lambda: upstream._pool.waiting == 2)
            server.gate.set()
            assert await asyncio.wait_for(first_task, BOUND) == 200
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(second, BOUND)
            assert await asyncio.wait_for(third, BOUND) == (200, b"echo:third")
            assert server.accepted == (1 if path == "/plain" else 2)
            await until(lambda: slots_held(upstream) == (1 if path == "/plain" else 0))

    run(scenario)


def test_cancelled_at_any_step_of_a_request_leaks_no_slot() -> None:
    """Cancel a request after 0, 1, 2, ... loop steps: during connect, after the socket opened,
    while awaiting the head, or after the answer. The one slot is always usable afterwards."""
    async def scenario() -> None:
        async with serving(max_connections=1, connect_timeout=2.0) as (server, upstream):
            for steps in range(40):
                task = asyncio.create_task(post(upstream, "/plain", b"x"))
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, BOUND)
                assert slots_held(upstream) <= 1 and upstream._pool.waiting == 0
            assert await asyncio.wait_for(post(upstream, "/plain", b"after"), BOUND) == (200, b"echo:after")

    run(scenario)


# -- streams --------------------------------------------------------------------------------------


def test_a_stream_read_to_its_end_returns_its_connection() -> None:
    async def scenario() -> None:
        async with serving(max_connections=1) as (server, upstream):
            response = await asyncio.wait_for(upstream.send("/stream", b"{}"), BOUND)
            body = b"".join([chunk async for chunk in response.chunks()])
            assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
            assert slots_held(upstream) == 1 and len(upstream._pool.idle) == 1
            assert await asyncio.wait_for(post(upstream, "/plain", b"next"), BOUND) == (200, b"echo:next")
            assert server.accepted == 1

    run(scenario)


def test_an_aborted_stream_frees_its_slot_for_the_next_in_line() -> None:
    async def scenario() -> None:
        async with serving(max_connections=1, connect_timeout=BOUND) as (server, upstream):
            response = await asyncio.wait_for(upstream.send("/stall", b"{}"), BOUND)
            chunks = response.chunks()
            assert await asyncio.wait_for(chunks.__anext__(), BOUND) == b"data: 0\n\n"
            waiter = asyncio.create_task(post(upstream, "/plain", b"next"))
            await until(lambda: upstream._pool.waiting == 1)  # the unfinished stream holds the only slot
            await response.aclose()
            assert await asyncio.wait_for(waiter, BOUND) == (200, b"echo:next")
            assert server.accepted == 2
            await chunks.aclose()

    run(scenario)
