"""A pooled HTTP/1.1 client for OpenAI-compatible upstreams, built for relaying.

Why not a general client: the relay needs keep-alive pooling, a connect /
first-byte / total timeout per upstream, the body chunk by chunk as it arrives,
and an abort that closes the socket at once when the client goes away (that is
how the upstream learns to stop generating). Doing only that, on asyncio
protocols with the llhttp parser, keeps the gateway's CPU per request small.

Per response it does the least it can: header names are kept as raw bytes and
decoded only if someone reads them, one timer covers both the first-byte and
the total deadline, and a body that has fully arrived is handed over in one
piece without going through the chunk iterator.

At most `max_connections` connections per upstream (pool.py). Waiting for one
counts against `connect_timeout`, as getting a connection (the first-byte
timeout is minutes: requests would pile up instead of falling back); past it,
UpstreamError "timeout", so the relay falls back or answers 504. A connection
goes back as soon as its response has fully arrived (the rest waits unread in
the response); closing or aborting one frees its slot.

The upstream is not trusted with the gateway's memory or its money: an answer
is at most `max_response_bytes` (head and body; past it, UpstreamError
"protocol"), and a request is written once. A POST that was written may have
been read and acted on, so a connection that fails after the write is never
retried on another one; only an idle connection the server closed meanwhile is
caught before anything is written (a zero-timeout poll of its socket).
"""

from __future__ import annotations

import asyncio
import collections
import select
import ssl
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import httptools

from tollgate.config.schema import UpstreamConfig
from tollgate.config.upstream_headers import header_value
from tollgate.proxy.upstream.base import UpstreamError
from tollgate.proxy.upstream.pool import ConnectionPool

PAUSE_AT = 1 << 20  # stop reading from the upstream when this much is buffered
MAX_IDLE = 64  # idle keep-alive connections kept per upstream


class HTTPResponse:
    """One response, fed by its connection; read as it arrives."""

    __slots__ = ("status", "deadline", "_raw_headers", "_headers", "_conn", "_chunks", "_buffered", "_done", "_error",
                 "_waiter", "_head", "_left")

    def __init__(self, conn: _Connection, deadline: float) -> None:
        self.status = 0
        self.deadline = deadline
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: dict[str, str] | None = None
        self._conn = conn
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._head: asyncio.Future = conn.loop.create_future()
        self._left = conn.client.settings.max_response_bytes  # bytes this answer may still have

    @property
    def headers(self) -> dict[str, str]:
        """Response headers, names lower-cased (decoded on first use: the relay rarely needs them)."""
        if self._headers is None:
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self._raw_headers}
        return self._headers

    # -- fed by the connection ------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > PAUSE_AT:
            self._conn.pause()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._error = error
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # mark retrieved: the sender may have given up already
        self._wake()

    # -- read by the relay ----------------------------------------------------

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._buffered < PAUSE_AT // 2 and not self._done:
                    self._conn.resume()  # once done, the connection may already serve someone else
                yield data
                continue
            if self._done:
                return
            if self._error is not None:
                raise self._error
            self._waiter = self._conn.loop.create_future()
            await self._waiter
            self._waiter = None

    async def read(self) -> bytes:
        if self._done:  # the usual case for a non-streamed answer: it arrived with its head
            chunks = self._chunks
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._buffered = 0
            return data
        parts = [chunk async for chunk in self.chunks()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def aclose(self) -> None:
        if not self._done:
            self._fail(UpstreamError("closed", "request aborted"))
            self._conn.abort()


class _Connection(asyncio.Protocol):
    def __init__(self, client: HTTPUpstream) -> None:
        self.client = client
        self.loop = client.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: HTTPResponse | None = None
        self.closed = False
        self.paused = False
        self.timer: asyncio.TimerHandle | None = None

    # -- transport events -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is not None:
            # Every byte on the wire counts (head, body, chunk framing): the parser never holds more than the bound.
            response._left -= len(data)
            if response._left < 0:
                limit = self.client.settings.max_response_bytes
                self._broken(UpstreamError("protocol", f"the upstream's answer is larger than {limit} bytes "
                                                       "(max_response_bytes)"))
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(UpstreamError("protocol", f"upstream sent invalid HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.client._forget(self)
        if self.response is not None:
            self._end_timer()
            self.response._fail(UpstreamError("closed", "upstream closed the connection"))
            self.response = None

    # -- parser callbacks -----------------------------------------------------

    def on_message_begin(self) -> None:
        if self.response is None:  # an idle connection must stay silent: raised as a parser error, and closed
            raise UpstreamError("protocol", "upstream sent a response nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        response.status = self.parser.get_status_code()
        if not response._head.done():
            response._head.set_result(None)
        # The first-byte timer keeps running: when it fires, _timed_out moves it on to the total deadline.

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        response, self.response = self.response, None
        self._end_timer()
        keep = self.parser.should_keep_alive()
        if response is not None:
            response._finish()
        if keep and not self.closed:
            self.resume()  # the response may have paused reading; its next user must not find it paused
            self.client._pool.put(self)
        else:
            self.abort()

    # -- control --------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._end_timer()
        self.timer = self.loop.call_later(seconds, self._timed_out)

    def _end_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self) -> None:
        self.timer = None
        response = self.response
        if response is not None and response.status:
            # The head came in time: from now on only the whole answer's deadline counts.
            left = response.deadline - self.loop.time()
            if left > 0:
                self._arm(left)
                return
        self._broken(UpstreamError("timeout", "upstream did not answer in time"))

    def _broken(self, error: UpstreamError) -> None:
        if self.response is not None:
            self.response._fail(error)
            self.response = None
        self.abort()

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def reusable(self) -> bool:
        """An idle connection still open: nothing readable on it (its end, or bytes nobody asked for)."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return True
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def abort(self) -> None:
        self.closed = True
        self.client._forget(self)
        if self.transport is not None:
            self.transport.abort()

    def start(self, request: bytes, first_byte_timeout: float, total_timeout: float) -> HTTPResponse:
        """Send one request; the first byte must come within one timeout, the whole body within the other."""
        now = self.loop.time()
        self.response = HTTPResponse(self, now + total_timeout)
        self._arm(min(first_byte_timeout, total_timeout))
        assert self.transport is not None
        self.transport.write(request)
        return self.response


class HTTPUpstream:
    """One OpenAI-compatible server (a deployment), with its own connection pool."""

    def __init__(self, config: UpstreamConfig, api_key: str | None = None) -> None:
        self.name = config.name
        self.inflight = 0
        self.reports_usage = config.usage == "upstream"
        self.secret = api_key or None
        self.settings = config
        parts = urlsplit(config.base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.base_path = parts.path.rstrip("/")
        host_header = self.host if parts.port is None else f"{self.host}:{parts.port}"
        head = f"Host: {host_header}\r\nContent-Type: application/json\r\nAccept: */*\r\nUser-Agent: tollgate\r\n"
        if api_key:
            head += f"Authorization: Bearer {api_key}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in config.headers)
        self._head = head.encode("latin-1")
        self._trace = (config.request_id_header + ": ").encode("latin-1") if config.request_id_header else b""
        self._forward = config.forward_headers
        self._pool: ConnectionPool[_Connection] = ConnectionPool(config.max_connections, MAX_IDLE)
        self._ssl = ssl.create_default_context() if self.tls else None
        self.loop: asyncio.AbstractEventLoop | None = None  # type: ignore[assignment]

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def close(self) -> None:
        pool = self._pool
        pool.close(UpstreamError("closed", f"upstream {self.name!r} is shutting down"))
        for conn in list(pool.open):
            conn.abort()

    def _forget(self, conn: _Connection) -> None:
        self._pool.forget(conn)

    async def _acquire(self) -> _Connection:
        """No idle connection: open a new one if `max_connections` allows, else wait for one in turn."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        loop, pool = self.loop, self._pool
        timeout = self.settings.connect_timeout
        deadline: float | None = None
        while True:
            if pool.reserve():
                return await self._connect(timeout)
            if deadline is None:
                deadline = loop.time() + timeout
            try:
                conn = await pool.wait(loop, deadline)
            except TimeoutError:
                raise UpstreamError("timeout", f"no free connection to upstream {self.name!r} in time "
                                               f"(max_connections = {pool.limit}, all busy)") from None
            if conn is None:  # a slot: the rest of the connect timeout is for opening the socket
                return await self._connect(deadline - loop.time())
            if conn.reusable():
                return conn
            # It closed while being handed over (its slot went on to the next in line), or the server
            # closed it just before: nothing was written to it. Try again.
            conn.abort()

    async def _connect(self, timeout: float) -> _Connection:
        """Open a connection on a slot already reserved: the slot becomes the connection's, or is released."""
        assert self.loop is not None
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=self._ssl),
                timeout=max(timeout, 0.0),
            )
        except BaseException as exc:  # cancellation included: a slot must never leak
            self._pool.release()
            if isinstance(exc, asyncio.TimeoutError):
                raise UpstreamError("connect", f"could not connect to upstream {self.name!r} in time") from None
            if isinstance(exc, OSError):
                raise UpstreamError("connect",
                                    f"could not connect to upstream {self.name!r}: {exc.strerror or exc}") from None
            raise
        if conn.closed:  # closed before we got to it; it never held the slot
            self._pool.release()
            raise UpstreamError("connect", f"upstream {self.name!r} closed the connection at once")
        self._pool.adopt(conn)
        return conn

    def _request_bytes(self, path: str, body: bytes, request_id: str | None,
                       client_headers: Mapping[str, str] | None) -> bytes:
        parts = [b"POST ", (self.base_path + path).encode("latin-1"), b" HTTP/1.1\r\n", self._head]
        if request_id and self._trace:
            parts += (self._trace, request_id.encode("latin-1"), b"\r\n")
        if self._forward and client_headers:
            for name in self._forward:
                value = client_headers.get(name)
                if value is not None and header_value(value):
                    parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        parts += (b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body)
        return b"".join(parts)

    def _take_idle(self) -> _Connection | None:
        """An idle connection fit to write to; those the server closed meanwhile are dropped (each once)."""
        pool = self._pool
        while (conn := pool.take_idle()) is not None:
            if conn.reusable():
                return conn
            conn.abort()
        return None

    async def send(self, path: str, body: bytes, request_id: str | None = None,
                   client_headers: Mapping[str, str] | None = None) -> HTTPResponse:
        """Write the request once; any failure after the write is final (see the module docstring)."""
        request = self._request_bytes(path, body, request_id, client_headers)
        conn = self._take_idle()
        if conn is None:
            conn = await self._acquire()
        response = conn.start(request, self.settings.first_byte_timeout, self.settings.timeout)
        try:
            await response._head
        except asyncio.CancelledError:
            conn.abort()  # the client went away: the upstream must stop working on it now
            raise
        return response
