"""The ASGI application: find the route, run it, and turn every failure into an answer in the right shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tollgate.domain.refusals import Refusal
from tollgate.http.errors import APIError
from tollgate.http.refusals import api_error
from tollgate.http.request import ClientGone, Receive, Request, Router, Scope, Send, send_bytes

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


class App:
    def __init__(
        self,
        router: Router,
        on_startup: list[Callable[[], Awaitable[None]]] | None = None,
        on_shutdown: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        self.router = router
        self.on_startup = on_startup or []
        self.on_shutdown = on_shutdown or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
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
            error = exc
        except Refusal as refusal:
            error = api_error(refusal)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            error = APIError(500, "internal_error", "the gateway failed to handle this request; it has been logged")
        else:
            return
        await _answer(send, error.status, self.router.shape_for(request.path)(error), JSON + error.headers)

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
