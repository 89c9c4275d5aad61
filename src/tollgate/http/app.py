"""The ASGI application: find the route, run it, and turn every failure into an answer in the right shape."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from tollgate.domain.refusals import Refusal
from tollgate.http.cors import Cors
from tollgate.http.errors import APIError
from tollgate.http.headers import REQUEST_ID, new_request_id
from tollgate.http.refusals import api_error
from tollgate.http.request import ClientGone, Receive, Request, Router, Scope, Send, send_bytes
from tollgate.proxy.access_log import AccessLog
from tollgate.proxy.traffic import Traffic, refusal_reason

log = logging.getLogger("tollgate.http")

JSON = [(b"content-type", b"application/json")]


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """An error answer, unless the handler had already started its own (then the server ends the connection).

    Handlers refuse before they answer, so this is the rule; checking it here keeps
    every successful send free of bookkeeping.
    """
    try:
        await send_bytes(send, status, body, headers)
    except RuntimeError:
        log.warning("an error came after the answer had started; the connection is closed")


def routing_path(scope: Scope) -> str | None:
    """The path routes are matched on: the raw path as the client sent it, never percent-decoded.

    Decoding before routing would let `/%61dmin/...` reach `/admin/...` past a front proxy's
    path rules; encoded slashes and dot segments are refused outright (None), since no route
    of this gateway has them and a proxy in front may read them differently.
    """
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw is not None else scope["path"]
    if "%" in path:
        lowered = path.lower()
        if "%2f" in lowered or "%5c" in lowered or "%00" in lowered or "%2e" in lowered:
            return None
    if "\\" in path or "\x00" in path:
        return None
    if "/." in path and any(segment in (".", "..") for segment in path.split("/")):
        return None
    return path


class _Answered:
    """`send` that notes the answer's status, and gives an answer the flow did not write its request id."""

    __slots__ = ("send", "scope", "request_id", "status", "add_id")

    def __init__(self, send: Send, scope: Scope) -> None:
        self.send = send
        self.scope = scope
        self.request_id: str | None = None
        self.status = 0
        self.add_id = True  # False: the answer carries its id already (an error answered by the app)

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.add_id and REQUEST_ID not in self.scope:
                self.request_id = self.request_id or new_request_id()
                message = {**message, "headers": [*message["headers"], (b"x-request-id", self.request_id.encode())]}
        await self.send(message)


class App:
    def __init__(
        self,
        router: Router,
        on_startup: list[Callable[[], Awaitable[None]]] | None = None,
        on_shutdown: list[Callable[[], Awaitable[None]]] | None = None,
        cors: Cors | None = None,
    ) -> None:
        self.router = router
        self.on_startup = on_startup or []
        self.on_shutdown = on_shutdown or []
        self.cors = cors  # `[server] cors_origins`; None: no CORS headers, OPTIONS is a 405 like any unknown method
        # Set at start-up (serve/app.py): the flow counts and logs the requests it runs; these hear of the rest.
        self.traffic: Traffic | None = None
        self.access_log: AccessLog | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if self.cors is not None:
            origin = request.headers.get("origin")
            if origin is not None and self.cors.allows(origin):
                if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
                    preflight = self.cors.preflight(origin, request.headers.get("access-control-request-headers"))
                    await send_bytes(send, 204, b"", preflight)
                    return
                send = self.cors.wrap(send, origin)
        access_log = self.access_log
        answered: _Answered | None = None
        if access_log is not None:
            started, t0 = time.time(), time.perf_counter()
            send = answered = _Answered(send, scope)
        path = routing_path(scope)
        handler, params, exists = self.router.find(request.method, path) if path else (None, {}, False)
        error: APIError
        try:
            if path is None:
                raise APIError(400, "invalid_path", "the request path holds an encoded slash or backslash, a NUL "
                               "or a dot segment; send the path as it is meant")
            if handler is None:
                if exists:
                    raise APIError(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}")
                raise APIError(404, "not_found", f"no endpoint at {request.method} {request.path}")
            request.params = params
            await handler(request, send)
        except ClientGone:
            return
        except APIError as exc:
            error, reason = exc, exc.code
        except Refusal as refusal:
            error, reason = api_error(refusal), refusal_reason(refusal)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            error = APIError(500, "internal_error", "the gateway failed to handle this request; it has been logged")
            reason = error.code
        else:
            if answered is not None and REQUEST_ID not in scope:
                access_log.edge(started, answered.request_id or "", request.method, request.path, answered.status,
                                None, (time.perf_counter() - t0) * 1000.0)
            return
        # A request the flow ran is counted and logged by the flow already; this one was refused before it.
        request_id = scope.get(REQUEST_ID)
        ran = request_id is not None
        if not ran:
            request_id = new_request_id()
            if self.traffic is not None:
                self.traffic.refused(reason)
        if answered is not None:
            answered.add_id = False
        headers = [*JSON, *error.headers, (b"x-request-id", request_id.encode())]
        await _answer(send, error.status, self.router.shape_for(request.path)(error), headers)
        if answered is not None and not ran:
            access_log.edge(started, request_id, request.method, request.path, error.status, reason,
                            (time.perf_counter() - t0) * 1000.0)

    async def startup(self) -> None:
        for hook in self.on_startup:
            await hook()

    async def shutdown(self) -> None:
        for hook in self.on_shutdown:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
