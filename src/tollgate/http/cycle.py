"""One request and its response on a connection of the built-in server, as ASGI sees them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollgate.http.server import Connection

_REASONS = {100: b"Continue", 200: b"OK", 201: b"Created", 204: b"No Content", 400: b"Bad Request",
            401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
            408: b"Request Timeout", 409: b"Conflict", 413: b"Payload Too Large", 414: b"URI Too Long",
            431: b"Request Header Fields Too Large", 429: b"Too Many Requests", 499: b"Client Closed Request",
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
                 "expect_continue", "head", "delivered", "flush", "broken")

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
        self.broken = False  # its body turned out malformed: to the app, the client is gone

    @property
    def gone(self) -> bool:
        return self.conn.closed or self.broken

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> dict:
        conn = self.conn
        if self.expect_continue and not conn.closed:
            self.expect_continue = False
            conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not (self.body or not self.more_body or self.gone or self.complete):
            conn.resume()
            self.waiter = conn.loop.create_future()
            await self.waiter
            self.waiter = None
        if self.gone or self.complete:
            return {"type": "http.disconnect"}
        if not self.delivered:
            body, self.body = bytes(self.body), bytearray()
            self.delivered = not self.more_body
            return {"type": "http.request", "body": body, "more_body": self.more_body}
        # The whole body was read before: from now on, wait for the client to go away.
        while not (self.gone or self.complete):
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


