"""OpenAI's error body, as an HTTP server would send it."""

from __future__ import annotations

import orjson


class RequestError(ValueError):
    """A request the model cannot serve; becomes a 4xx JSON error response."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status
        self.type = type

    def body(self) -> bytes:
        return error_body(self.message, param=self.param, code=self.code, type=self.type)


def error_body(
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    type: str = "invalid_request_error",
) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type, "param": param, "code": code}}
    )


def parse_json_object(body: bytes) -> dict:
    """The request body as a JSON object, or a 400 like OpenAI's for anything else."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(
            "We could not parse the JSON body of your request. (HINT: This likely means "
            "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
            "payload, but what was sent was not valid JSON.)"
        ) from None
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.")
    return data


def unknown_path(path: str) -> RequestError:
    return RequestError(
        f"Invalid URL (POST /v1{path})", code="unknown_url", status=404
    )
