"""uvicorn's httptools protocol, with every limit of `[server.limits]` (config/schema.py `HTTPLimits`).

uvicorn does the HTTP/1.1 work (parsing, keep-alive, pipelining, flow control,
graceful shutdown); what it leaves unbounded is added here, in the protocol's
own callbacks:

- the request head is measured before the parser buffers it (llhttp's binding
  concatenates a header value piece by piece: a 100 MiB header would cost its
  square) and refused past the limit: 414 for the request target, 431 else;
- a request's head must arrive within `header_timeout` of its first byte and its
  body within `body_timeout` of its head: 408 (slowloris, short bodies);
- a connection that sends nothing after opening is closed like an idle keep-alive;
- a client that does not read its answer for `write_timeout` is cut off, so its
  request settles for what was sent and frees its reservation;
- connections beyond `max_connections` get 503 at once;
- every malformed request gets its 400 after the requests before it on the same
  connection are answered (uvicorn would write it at once, ahead of them), and a
  request asking to switch protocols is answered as plain HTTP, then the
  connection ends.
"""

from __future__ import annotations

import asyncio
import logging

import httptools
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tollgate.config.schema import HTTPLimits

log = logging.getLogger("tollgate.http")

# Past the limits, this many more bytes of a head are fed to the parser before its end must be seen.
HEAD_SLACK = 1024
REASONS = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long",
           431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}
CODES = {400: b"bad_request", 408: b"request_timeout", 414: b"uri_too_long", 431: b"headers_too_large",
         503: b"too_many_connections"}


def error_response(status: int, reason: bytes) -> bytes:
    """A complete answer that closes the connection, for a request no app has seen."""
    body = b'{"error": {"message": "%b", "type": "invalid_request_error", "code": "%b"}}' % (reason, CODES[status])
    return (b"HTTP/1.1 %d %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, REASONS[status], len(body)) + body)


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that was just refused."""


class TimedFlowControl(FlowControl):
    """uvicorn's write flow control, with a bound on how long an answer waits for its reader."""

    def __init__(self, transport: asyncio.Transport, write_timeout: float) -> None:
        super().__init__(transport)
        self.write_timeout = write_timeout

    async def drain(self) -> None:
        try:
            await asyncio.wait_for(self._is_writable_event.wait(), self.write_timeout)
        except TimeoutError:
            log.info("a client did not read its answer for %ss: connection aborted", self.write_timeout)
            self._transport.abort()  # connection_lost marks the request disconnected: the flow settles it


class LimitedProtocol(HttpToolsProtocol):
    limits = HTTPLimits()  # replaced by `limited_protocol`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.head_bytes = 0
        self.in_head = True
        self.tail = b""
        self.refused: tuple[int, bytes] | None = None
        self.upgrading = False
        self.deadline: asyncio.TimerHandle | None = None
        self.active = None  # the request whose app runs now (uvicorn's `cycle` is the one parsed last)
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.connections.discard(self)
            transport.write(error_response(503, b"the gateway has too many open connections; retry shortly"))
            transport.close()
            return
        self.flow = TimedFlowControl(transport, self.limits.write_timeout)
        self._arm(self.limits.keepalive_timeout, self._idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- reading ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.refused is not None or self.upgrading or self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        if self.in_head:
            room = self._head_room(data)
            if room is not None:  # too much head: let the parser see what fits (a long target is a 414), then 431
                self._feed(data[:room])
                self._refuse(431, b"the request head is too large")
                return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Answered as plain HTTP; what follows belongs to a protocol not spoken here.
            self.upgrading = True
            self.flow.pause_reading()
        except httptools.HttpParserCallbackError:
            if self.refused is None:
                self._refuse(400, b"malformed HTTP request")
        except httptools.HttpParserError:
            self._refuse(400, b"malformed HTTP request")

    def _head_room(self, data: bytes) -> int | None:
        """None if `data` keeps the request head within its limit or ends it in time; else how much fits."""
        room = max(0, self.limits.max_url_bytes + self.limits.max_header_bytes + HEAD_SLACK - self.head_bytes)
        self.head_bytes += len(data)
        if len(data) <= room:
            self.tail = data[-3:]
            return None
        if (self.tail + data).find(b"\r\n\r\n", 0, room + len(self.tail) + 4) >= 0:
            return None
        return room

    # -- parser callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self._arm(self.limits.header_timeout, self._late)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            self._refuse(414, b"the request target is too long")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > self.limits.max_headers:
            self._refuse(431, b"too many header fields")
            raise _Refused

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        self.tail = b""
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse(431, b"the request headers are too large")
            raise _Refused
        self._arm(self.limits.body_timeout, self._late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the request is in; its answer takes what it takes
        self.in_head = True
        super().on_message_complete()

    # -- answers ------------------------------------------------------------------

    def _start_asgi_task(self, cycle, app) -> None:  # type: ignore[no-untyped-def]
        self.active = cycle
        task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: self._after_app(cycle))
        self.tasks.add(task)

    def _after_app(self, cycle) -> None:  # type: ignore[no-untyped-def]
        if self.active is cycle:
            self.active = None
        # An app that gave up on a request refused mid-body answered nothing: the refusal is its answer.
        if self.refused is not None and not cycle.response_started and not self.pipeline:
            self._send_refusal()

    def on_response_complete(self) -> None:
        if self.refused is not None and not self.pipeline:
            self.server_state.total_requests += 1
            self._send_refusal()
            return
        if self.upgrading and not self.pipeline:
            self.server_state.total_requests += 1
            self.transport.close()
            return
        super().on_response_complete()

    # -- refusing -------------------------------------------------------------------

    def _refuse(self, status: int, reason: bytes) -> None:
        """Answer `status` once the requests before it are answered, then close; read nothing more."""
        if self.refused is not None or self.transport.is_closing():
            return
        self.refused = (status, reason)
        self._disarm()
        self.flow.pause_reading()
        cycle = self.cycle  # the request parsed last: the refused one, if its head was complete
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            if self.pipeline and self.pipeline[0][0] is cycle:
                self.pipeline.popleft()  # queued behind another: it is never started
            else:
                cycle.disconnected = True  # in flight, its body unfinished: to its app the client is gone
                cycle.message_event.set()
        if (self.active is None or self.active.response_complete) and not self.pipeline:
            self._send_refusal()

    def _send_refusal(self) -> None:
        if self.refused is not None and not self.transport.is_closing():
            self.transport.write(error_response(*self.refused))
            self.transport.close()

    # -- deadlines ------------------------------------------------------------------

    def _arm(self, seconds: float, expire) -> None:  # type: ignore[no-untyped-def]
        self._disarm()
        self.deadline = self.loop.call_later(seconds, expire)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _idle(self) -> None:
        self.deadline = None
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def _late(self) -> None:
        self.deadline = None
        self._refuse(408, b"the request did not arrive in time")


def limited_protocol(limits: HTTPLimits) -> type[LimitedProtocol]:
    """The protocol class uvicorn instantiates (`http=`), bound to these limits."""
    return type("LimitedProtocol", (LimitedProtocol,), {"limits": limits})
