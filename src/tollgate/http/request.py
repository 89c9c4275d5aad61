"""A small ASGI toolkit: requests, responses and a router, with nothing between them and the wire.

The gateway's own overhead is the product's selling point, so this layer does
the least that is correct: headers parsed once, bodies read with a size cap,
JSON through orjson, routes found by one dict lookup.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from tollgate.http.errors import OPENAI_SHAPE, APIError, Shape

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]


class Request:
    __slots__ = ("scope", "receive", "method", "path", "headers", "params", "_query")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.params: dict[str, str] = {}
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = {k: v[-1] for k, v in parse_qs(raw).items()}
        return self._query

    async def body(self, limit: int) -> bytes:
        """The request body, refused with 413 as soon as it exceeds `limit` bytes."""
        declared = self.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise APIError(413, "request_too_large", f"request body is larger than {limit} bytes")
            except ValueError:
                raise APIError(400, "invalid_request", "Content-Length is not a number") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise APIError(413, "request_too_large", f"request body is larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def json(self, limit: int, *, empty: Any = None) -> Any:
        """The parsed body; an empty body is `empty` when given, else a 400."""
        raw = await self.body(limit)
        if not raw.strip():
            if empty is not None:
                return empty
            raise APIError(400, "invalid_json", "the request body is empty; expected a JSON object")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise APIError(400, "invalid_json", f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from None

    @property
    def client_address(self) -> str | None:
        """The peer's IP address as the server saw it (no X-Forwarded-For: a client could write any)."""
        client = self.scope.get("client")
        return client[0] if client else None

    def bearer(self) -> str | None:
        value = self.headers.get("authorization")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


class ClientGone(Exception):
    """The client closed the connection before we answered."""


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers = JSON_HEADERS) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, data: Any, headers: Headers | None = None) -> None:
    await send_bytes(send, status, orjson.dumps(data), JSON_HEADERS if headers is None else [*JSON_HEADERS, *headers])


Handler = Callable[[Request, Send], Awaitable[None]]


class Router:
    """Exact paths by dict lookup; `{name}` segments by regex, tried in order."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._patterns: list[tuple[str, re.Pattern, Handler]] = []
        self._paths: set[str] = set()
        self._routes: list[tuple[str, str]] = []  # (method, path template) in the order mounted
        self._shapes: list[tuple[str, Shape]] = []

    def error_shape(self, prefix: str, shape: Shape) -> None:
        """Errors on paths under `prefix` (matched or not) are written in `shape`; OpenAI's elsewhere."""
        self._shapes.append((prefix, shape))
        self._shapes.sort(key=lambda entry: len(entry[0]), reverse=True)

    def shape_for(self, path: str) -> Shape:
        for prefix, shape in self._shapes:
            if path.startswith(prefix):
                return shape
        return OPENAI_SHAPE

    def routes(self) -> list[tuple[str, str]]:
        """Every (method, path template) mounted, e.g. ("GET", "/v1/models/{model_id}"): for the OpenAPI check."""
        return list(self._routes)

    def add(self, method: str, path: str, handler: Handler) -> None:
        self._paths.add(path)
        self._routes.append((method, path))
        if "{" not in path:
            self._exact[(method, path)] = handler
            return
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        self._patterns.append((method, re.compile(f"^{regex}$"), handler))

    def find(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, path params, path exists with another method)."""
        handler = self._exact.get((method, path))
        if handler is not None:
            return handler, {}, True
        if method == "HEAD":  # a GET without its body (the server leaves the body out)
            return self.find("GET", path)
        other_method = any(p == path for (_, p) in self._exact)
        for m, pattern, h in self._patterns:
            match = pattern.match(path)
            if match:
                if m == method:
                    return h, match.groupdict(), True
                other_method = True
        return None, {}, other_method
