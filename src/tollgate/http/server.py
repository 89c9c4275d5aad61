"""A lean HTTP/1.1 server for the gateway's ASGI app: httptools parsing, keep-alive, nothing else.

The gateway's added latency is its selling point, and a general-purpose ASGI
server spends a noticeable part of each request on things this app never uses
(header validation regexes, access logging plumbing, proxy headers, per-request
state objects). This server does what HTTP/1.1 requires and what the app uses:
request parsing, `Expect: 100-continue`, bodies in and out (Content-Length or
chunked), keep-alive with pipelined requests answered in order, write flow
control, disconnect notice (`http.disconnect`), and a graceful stop.
`server.http = "uvicorn"` runs the same app under uvicorn instead.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import httptools

log = logging.getLogger("tollgate.http")

App = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

_REASONS = {100: b"Continue", 200: b"OK", 201: b"Created", 204: b"No Content", 400: b"Bad Request",
            401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
            409: b"Conflict", 413: b"Payload Too Large", 429: b"Too Many Requests", 499: b"Client Closed Request",
            500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable",
            504: b"Gateway Timeout"}
_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Status"))
    return line


class Cycle:
    """One request and its response, as ASGI sees them."""

    __slots__ = ("conn", "scope", "body", "more_body", "waiter", "started", "complete", "chunked", "keep_alive",
                 "expect_continue", "head", "delivered", "flush")

    def __init__(self, conn: Connection, scope: dict, keep_alive: bool, expect_continue: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.body = bytearray()
        self.more_body = True
        self.waiter: asyncio.Future | None = None
        self.started = False
        self.complete = False
        self.chunked = False
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.head = scope["method"] == "HEAD"
        self.delivered = False  # the whole request body has been handed to the app
        self.flush: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> dict:
        conn = self.conn
        if self.expect_continue and not conn.closed:
            self.expect_continue = False
            conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not (self.body or not self.more_body or conn.closed or self.complete):
            conn.resume()
            self.waiter = conn.loop.create_future()
            await self.waiter
            self.waiter = None
        if conn.closed or self.complete:
            return {"type": "http.disconnect"}
        if not self.delivered:
            body, self.body = bytes(self.body), bytearray()
            self.delivered = not self.more_body
            return {"type": "http.request", "body": body, "more_body": self.more_body}
        # The whole body was read before: from now on, wait for the client to go away.
        while not (conn.closed or self.complete):
            self.waiter = conn.loop.create_future()
            await self.waiter
            self.waiter = None
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        conn = self.conn
        if conn.closed:
            return
        if conn.write_paused:
            await conn.drain()
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind}")
            self.started = True
            has_length = False
            parts = [status_line(message["status"])]
            for name, value in message.get("headers", ()):
                if name == b"content-length":
                    has_length = True
                parts += (name, b": ", value, b"\r\n")
            if not has_length and not self.head:
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            if not self.keep_alive:
                parts.append(b"connection: close\r\n")
            parts.append(b"\r\n")
            # The head waits for the first body bytes, to leave in one write; a stream whose
            # first event is slow to come gets its head on its own shortly.
            conn.pending = b"".join(parts)
            if self.chunked:
                self.flush = conn.loop.call_later(0.02, conn.flush_head)
            return
        if kind != "http.response.body" or self.complete:
            raise RuntimeError(f"unexpected ASGI message {kind}")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.head:
            body = b""
        if self.chunked:
            out = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more:
                out += b"0\r\n\r\n"
        else:
            out = body
        if conn.pending:
            out, conn.pending = conn.pending + out, b""
            if self.flush is not None:
                self.flush.cancel()
                self.flush = None
        if out:
            conn.transport.write(out)
        if not more:
            self.complete = True
            self.wake()
            conn.finished(self)


class Connection(asyncio.Protocol):
    def __init__(self, app: App, server: Server) -> None:
        self.app = app
        self.server = server
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
        self.parsing: Cycle | None = None
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None

    # -- transport ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        for cycle in (self.cycle, *self.queue, self.parsing):
            if cycle is not None:
                cycle.wake()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(b"upgrades are not supported")
        except httptools.HttpParserError:
            self._reject(b"malformed HTTP request")

    def _reject(self, reason: bytes) -> None:
        if self.cycle is None and not self.closed:
            body = b'{"error": {"message": "%b", "type": "invalid_request_error", "code": "bad_request"}}' % reason
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
                                 + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self.close()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    async def drain(self) -> None:
        if self.write_paused and not self.closed:
            self.drain_waiter = self.loop.create_future()
            await self.drain_waiter
            self.drain_waiter = None

    def resume(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    def flush_head(self) -> None:
        if self.pending and not self.closed:
            self.transport.write(self.pending)
            self.pending = b""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    # -- parser callbacks -----------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
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

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.body += body
            if len(cycle.body) > 1 << 20 and not self.read_paused:
                self.transport.pause_reading()  # the app reads bodies as fast as it wants them
                self.read_paused = True
            cycle.wake()

    def on_message_complete(self) -> None:
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
            self.close()  # the app returned without finishing its answer

    def finished(self, cycle: Cycle) -> None:
        if not cycle.keep_alive or (cycle.more_body and not self.closed):
            # Connection: close, or a body the app never read: this connection cannot carry another request.
            self.close()
            return
        self.cycle = None
        if self.queue:
            self._start(self.queue.popleft())
        if not self.queue:
            self.resume()
        if self.server.stopping and self.cycle is None:
            self.close()


class Server:
    def __init__(self, app: App) -> None:
        self.app = app
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
