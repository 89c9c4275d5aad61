"""CORS for browser clients (`[server] cors_origins`): preflights answered, answers readable from the listed origins.

Off unless origins are listed. No API of the gateway authenticates by cookie (every one takes a
bearer key or `x-api-key`), so answers never allow credentials, and a preflight may allow whatever
request headers the browser asks for (the SDKs send their own `x-stainless-*`, `anthropic-*` ones);
the allowed origins still decide which web pages may read the answers. The headers a client needs
(the request id, the budget and cost headers, Retry-After) are exposed to its scripts.
"""

from __future__ import annotations

import re

from tollgate.http.request import Headers, Send

ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
# Allowed when a preflight names none (or names them in a form that is not a header list).
ALLOW_HEADERS = (b"authorization, content-type, x-api-key, anthropic-version, anthropic-beta, "
                 b"anthropic-dangerous-direct-browser-access, openai-organization, openai-project, x-request-id")
EXPOSE_HEADERS = (b"x-request-id, x-request-cost, x-request-cost-nanos, x-request-cost-max, x-budget-limit, "
                  b"x-budget-remaining, x-budget-reset, x-budget-window, x-tollgate-model, x-tollgate-route, "
                  b"x-tollgate-fallbacks, retry-after, x-should-retry, deprecation, sunset, link")
MAX_AGE = b"600"  # seconds a browser may keep a preflight's answer
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


class Cors:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(o.lower() for o in origins if o != "*")

    def allows(self, origin: str) -> bool:
        return self.any or origin.lower() in self.origins

    def _origin_headers(self, origin: str) -> Headers:
        if self.any:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    def preflight(self, origin: str, requested: str | None) -> Headers:
        """The headers of a 204 answer to an allowed origin's preflight (`OPTIONS` with
        `Access-Control-Request-Method`)."""
        allow = ALLOW_HEADERS
        if requested and len(requested) <= 2000 and _HEADER_LIST.match(requested.strip()):
            allow = requested.strip().encode("latin-1")
        return [*self._origin_headers(origin), (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", allow), (b"access-control-max-age", MAX_AGE)]

    def wrap(self, send: Send, origin: str) -> Send:
        """`send` with the CORS headers added to the answer's head (a request from an allowed origin)."""
        extra = [*self._origin_headers(origin), (b"access-control-expose-headers", EXPOSE_HEADERS)]

        async def cors_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return cors_send
