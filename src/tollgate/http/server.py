"""A lean HTTP/1.1 server for the gateway's ASGI app: httptools parsing, keep-alive, nothing else.

The gateway's added latency is its selling point, and a general-purpose ASGI
server spends a noticeable part of each request on things this app never uses
(header validation regexes, access logging plumbing, proxy headers, per-request
state objects). This server does what HTTP/1.1 requires and what the app uses:
request parsing, `Expect: 100-continue`, bodies in and out (Content-Length or
chunked), keep-alive with pipelined requests answered in order, write flow
control, disconnect notice (`http.disconnect`), and a graceful stop.
`server.http = "uvicorn"` runs the same app under uvicorn instead.

Every size and wait is bounded (limits.py): a request head too large is
refused before the parser buffers it (414, 431), a request that does not
arrive in time gets 408, an idle connection is closed, a reader that does not
read is cut off, and connections beyond the cap get 503. Every malformed
request gets a 400 before the connection closes, also one that follows a
pipelined request still being answered.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import httptools

from tollgate.http.cycle import Cycle, status_line
from tollgate.config.schema import HTTPLimits

log = logging.getLogger("tollgate.http")

App = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

# Between a request head's start and its end, at most this many bytes past the limits are fed to the
# parser before its end must have been seen (the parser buffers a header value by concatenation).
_HEAD_SLACK = 1024


class Connection(asyncio.Protocol):
    def __init__(self, app: App, server: Server) -> None:
        self.app = app
        self.server = server
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future | None = None
        self.cycle: Cycle | None = None
        self.queue: collections.deque[Cycle] = collections.deque()
        self.pending = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0  # of the request head being read (request line and headers)
        self.in_head = True  # the next bytes belong to a request head
        self.tail = b""  # the last bytes of the head so far: its end may straddle two reads
        self.parsing: Cycle | None = None
        self.refused: tuple[int, bytes] | None = None  # a malformed request: answered, then the connection closes
        self.upgrading = False  # a request asked to switch protocols: the connection ends after its answer
        self.timer: asyncio.TimerHandle | None = None
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None

    # -- transport ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")
        if len(self.server.connections) >= self.limits.max_connections:
            self.closed = True
            transport.write(_error_response(503, b"the gateway has too many open connections; retry shortly"))
            transport.close()
            return
        self.server.connections.add(self)
        self._arm(self.limits.keepalive_timeout, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        self.server.connections.discard(self)
        for cycle in (self.cycle, *self.queue, self.parsing):
            if cycle is not None:
                cycle.wake()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.refused is not None or self.closed:
            return  # nothing after a malformed request is read
        if self.in_head:
            room = self._head_room(data)
            if room is not None:  # too much head: let the parser see what fits (a long URL is a 414), then 431
                self._feed(data[:room])
                self._refuse(431, b"the request head is too large")
                return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request was complete and is answered as if it had no Upgrade header; what follows
            # it belongs to a protocol this server does not speak: the connection ends after the answer.
            self.upgrading = True
            if not self.read_paused:
                self.transport.pause_reading()
                self.read_paused = True
        except httptools.HttpParserCallbackError:
            if self.refused is None:  # our own callbacks refuse by raising _Refused after setting it
                self._refuse(400, b"malformed HTTP request")
        except httptools.HttpParserError:
            self._refuse(400, b"malformed HTTP request")

    def _head_room(self, data: bytes) -> int | None:
        """None if `data` keeps the request head within its limit or ends it in time; else how much of it fits.

        Checked before parsing, since the parser buffers a header value by concatenation.
        """
        room = max(0, self.limits.max_url_bytes + self.limits.max_header_bytes + _HEAD_SLACK - self.head_bytes)
        self.head_bytes += len(data)
        if len(data) <= room:
            self.tail = data[-3:]
            return None
        if (self.tail + data).find(b"\r\n\r\n", 0, room + len(self.tail) + 4) >= 0:
            return None
        return room

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the client reads; one that does not read for `write_timeout` is cut off."""
        if self.write_paused and not self.closed:
            self.drain_waiter = waiter = self.loop.create_future()
            timer = self.loop.call_later(self.limits.write_timeout, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                log.info("a client did not read its answer for %ss: connection aborted", self.limits.write_timeout)
                self.abort()
            finally:
                timer.cancel()
                self.drain_waiter = None

    def resume(self) -> None:
        if self.read_paused and not self.closed and self.refused is None and not self.upgrading:
            self.read_paused = False
            self.transport.resume_reading()

    def flush_head(self) -> None:
        if self.pending and not self.closed:
            self.transport.write(self.pending)
            self.pending = b""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._disarm()
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once, unsent bytes too (a client that does not read)."""
        if not self.closed:
            self.closed = True
            self._disarm()
            self.transport.abort()

    # -- timers: a connection always has at most one deadline ----------------------

    def _arm(self, seconds: float, expire: Callable[[], None]) -> None:
        self._disarm()
        self.timer = self.loop.call_later(seconds, expire)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _idle_timeout(self) -> None:
        self.timer = None
        if self.cycle is None and not self.queue:
            self.close()

    def _arrival_timeout(self) -> None:
        """The request being read did not arrive (its head or its body) in time."""
        self.timer = None
        self._refuse(408, b"the request did not arrive in time")

    # -- refusing a malformed request -------------------------------------------

    def _refuse(self, status: int, reason: bytes) -> None:
        """Answer `status` once the requests before it are answered, then close; read nothing more."""
        if self.refused is not None or self.closed:
            return
        self.refused = (status, reason)
        self._disarm()
        if not self.read_paused:
            self.transport.pause_reading()
            self.read_paused = True
        partial, self.parsing = self.parsing, None
        if partial is not None:
            if partial is self.cycle:
                partial.broken = True  # the app reading its body sees the client gone
                partial.wake()
            elif partial in self.queue:
                self.queue.remove(partial)
        if self.cycle is None:
            self._send_refusal()

    def _send_refusal(self) -> None:
        if self.refused is not None and not self.closed:
            self.transport.write(_error_response(*self.refused))
            self.close()

    # -- parser callbacks -----------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.in_head = True
        self._arm(self.limits.header_timeout, self._arrival_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_url_bytes:
            self._refuse(414, b"the request target is too long")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))
        if len(self.headers) > self.limits.max_headers:
            self._refuse(431, b"too many header fields")
            raise _Refused

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        self.tail = b""
        if self.head_bytes_of_fields() > self.limits.max_header_bytes:
            self._refuse(431, b"the request headers are too large")
            raise _Refused
        self._arm(self.limits.body_timeout, self._arrival_timeout)
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": self.parser.get_http_version(), "method": self.parser.get_method().decode("ascii"),
            "scheme": "http", "path": path, "raw_path": raw_path, "query_string": parsed.query or b"",
            "root_path": "", "headers": self.headers, "client": self.client, "server": self.local,
        }
        expect = any(name == b"expect" and value.lower() == b"100-continue" for name, value in self.headers)
        cycle = Cycle(self, scope, self.parser.should_keep_alive() and not self.server.stopping, expect)
        self.parsing = cycle
        if self.cycle is None:
            self._start(cycle)
        else:
            self.queue.append(cycle)  # pipelined: answered after the one in progress
            self.transport.pause_reading()
            self.read_paused = True

    def head_bytes_of_fields(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.body += body
            if len(cycle.body) > 1 << 20 and not self.read_paused:
                self.transport.pause_reading()  # the app reads bodies as fast as it wants them
                self.read_paused = True
            cycle.wake()

    def on_message_complete(self) -> None:
        self.in_head = True
        self._disarm()  # the request is in; its answer takes what it takes
        cycle, self.parsing = self.parsing, None
        if cycle is not None:
            cycle.more_body = False
            cycle.wake()

    # -- cycles ---------------------------------------------------------------

    def _start(self, cycle: Cycle) -> None:
        self.cycle = cycle
        self.loop.create_task(self._run(cycle))

    async def _run(self, cycle: Cycle) -> None:
        try:
            await self.app(cycle.scope, cycle.receive, cycle.send)
        except BaseException:
            if not cycle.started and not self.closed:
                log.exception("unhandled error in the application")
                await cycle.send({"type": "http.response.start", "status": 500,
                                  "headers": [(b"content-type", b"text/plain"), (b"content-length", b"21")]})
                await cycle.send({"type": "http.response.body", "body": b"Internal Server Error"})
            elif not self.closed:
                log.exception("error after the response started")
                self.close()
        if not cycle.complete and not self.closed:
            if cycle.broken and not cycle.started:
                self.cycle = None
                self._send_refusal()  # its body was malformed: the app gave up on it, the client gets a 400
            else:
                self.close()  # the app returned without finishing its answer

    def finished(self, cycle: Cycle) -> None:
        if cycle.broken:
            self.close()  # the app answered a request whose body was malformed: nothing else can follow
            return
        if not cycle.keep_alive or (cycle.more_body and not self.closed and self.refused is None):
            # Connection: close, or a body the app never read: this connection cannot carry another request.
            self.close()
            return
        self.cycle = None
        if self.queue:
            self._start(self.queue.popleft())
        elif self.refused is not None:
            self._send_refusal()
            return
        elif self.upgrading:
            self.close()
            return
        if not self.queue:
            self.resume()
        if self.server.stopping and self.cycle is None:
            self.close()
        elif self.cycle is None and self.parsing is None and not self.closed:
            self._arm(self.limits.keepalive_timeout, self._idle_timeout)


class _Refused(Exception):
    """Raised by a parser callback to stop parsing a request that was just refused."""


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _error_response(status: int, reason: bytes) -> bytes:
    """A complete answer that closes the connection; written before any app saw the request."""
    body = b'{"error": {"message": "%b", "type": "invalid_request_error", "code": "%b"}}' % (
        reason, _CODES.get(status, b"bad_request"))
    return (status_line(status) + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


_CODES = {408: b"request_timeout", 414: b"uri_too_long", 431: b"headers_too_large", 503: b"too_many_connections"}


class Server:
    def __init__(self, app: App, limits: HTTPLimits | None = None) -> None:
        self.app = app
        self.limits = limits or HTTPLimits()
        self.connections: set[Connection] = set()
        self.stopping = False

    def protocol(self) -> Connection:
        return Connection(self.app, self)

    async def stop(self, grace: float) -> None:
        """Stop taking requests; let the ones in progress finish (up to `grace` seconds)."""
        self.stopping = True
        for conn in list(self.connections):
            if conn.cycle is None:
                conn.close()
        deadline = asyncio.get_running_loop().time() + grace
        while any(c.cycle is not None for c in self.connections) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.close()
