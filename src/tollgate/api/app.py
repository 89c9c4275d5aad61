"""The ASGI application: find the route, run it, and turn every failure into an answer in the right shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tollgate.accounts.errors import AccountError
from tollgate.api.errors import APIError
from tollgate.api.http import ClientGone, Receive, Request, Router, Scope, Send, send_bytes

log = logging.getLogger("tollgate.api")

JSON = [(b"content-type", b"application/json")]


def _body(path: str, error: APIError) -> bytes:
    if path.startswith("/anthropic/"):
        return error.anthropic_body()
    if path.startswith(("/api/", "/admin/")):
        return error.envelope_body()
    return error.openai_body()


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
        handler, params, exists = self.router.find(request.method, request.path)
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            if handler is None:
                if exists:
                    raise APIError(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}")
                raise APIError(404, "not_found", f"no endpoint at {request.method} {request.path}")
            request.params = params
            await handler(request, tracked)
        except ClientGone:
            return
        except APIError as error:
            if not started:
                await send_bytes(send, error.status, _body(request.path, error), JSON + error.headers)
        except AccountError as exc:
            if not started:
                error = APIError(exc.status, exc.code, exc.message, param=exc.param)
                await send_bytes(send, error.status, _body(request.path, error), JSON)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            if not started:
                error = APIError(500, "internal_error", "the gateway failed to handle this request; it has been logged")
                await send_bytes(send, 500, _body(request.path, error), JSON)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        await hook()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    try:
                        await hook()
                    except Exception:
                        log.exception("shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return
