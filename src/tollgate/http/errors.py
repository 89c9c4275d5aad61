"""One error type, three wire shapes: OpenAI's, Anthropic's, and the management envelope.

Each API declares its shape when it mounts its routes (`Router.error_shape`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "timeout_error",
}

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}


class APIError(Exception):
    """An answer that is not a success. `code` is the stable, machine-readable part."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.type = type
        self.param = param
        self.headers = headers or []
        self.extra = extra or {}

    def openai_body(self) -> bytes:
        error = {
            "message": self.message,
            "type": self.type or _OPENAI_TYPES.get(self.status, "invalid_request_error"),
            "param": self.param,
            "code": self.code,
            **self.extra,
        }
        return orjson.dumps({"error": error})

    def anthropic_body(self) -> bytes:
        error = {"type": _ANTHROPIC_TYPES.get(self.status, "api_error"), "message": self.message, "code": self.code,
                 **self.extra}
        return orjson.dumps({"type": "error", "error": error})

    def envelope_body(self) -> bytes:
        error = {"code": self.code, "message": self.message}
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return orjson.dumps({"success": False, "error": error})


# How an API writes an error: one of the three bodies above.
Shape = Callable[[APIError], bytes]
OPENAI_SHAPE: Shape = APIError.openai_body
ANTHROPIC_SHAPE: Shape = APIError.anthropic_body
ENVELOPE_SHAPE: Shape = APIError.envelope_body
