"""Turning a failed call into an `ErrorInfo`: error code and type first, then status, text last.

The order matters. A 429 can mean "wait a minute" (rate_limit_exceeded), "wait for the
window" (budget_exceeded) or "top up" (insufficient_credits); only the code tells them apart
reliably. Message text is read only when a caller hands us nothing structured (a framework
that flattened the error to a string), because wording changes and gets translated.

Works by duck typing on the `openai` and `anthropic` SDK exceptions (`status_code`,
`response.headers`, `body`), so this module imports neither.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tollgate.agent.errors import BudgetExhausted, ErrorInfo, ErrorKind
from tollgate.agent.timefmt import parse_instant, parse_retry_after, utc_from_epoch

BUDGET_CODES = frozenset({"budget_exceeded"})
RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error", "requests_rate_limit_exceeded"})
CREDIT_CODES = frozenset(
    {"insufficient_credits", "insufficient_quota", "billing_hard_limit_reached", "payment_required"}
)
AUTH_CODES = frozenset(
    {"invalid_api_key", "key_revoked", "subscription_expired", "authentication_error", "permission_error"}
)
CONTEXT_CODES = frozenset({"context_length_exceeded", "context_window_exceeded", "request_too_large"})
BAD_REQUEST_CODES = frozenset({"model_not_found", "invalid_request", "not_found_error"})

# A 429 that names no code but asks for a wait longer than this is a spent window, not a minute.
LONG_WAIT_SECONDS = 120.0

_TEXT_RULES: tuple[tuple[ErrorKind, re.Pattern[str]], ...] = (
    (ErrorKind.CREDITS, re.compile(r"insufficient[ _]credits|credit balance|insufficient[ _]quota|payment required")),
    (ErrorKind.BUDGET, re.compile(r"usage limit|budget (?:exceeded|exhausted|spent)|spend(?:ing)? limit")),
    (ErrorKind.CONTEXT_TOO_LONG, re.compile(r"context[ _](?:length|window)|maximum context|prompt is too long")),
    (ErrorKind.RATE_LIMIT, re.compile(r"rate[ _]limit|too many requests|\b429\b")),
    (ErrorKind.AUTH, re.compile(r"invalid api key|unauthori[sz]ed|\b40[13]\b|key (?:was )?revoked|forbidden")),
)

_TRANSPORT_CLASS_NAMES = frozenset(
    {"APIConnectionError", "APITimeoutError", "TransportError", "TimeoutException", "NetworkError"}
)


def _lower_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k).lower(): str(v) for k, v in items}


def _error_object(body: Any) -> dict[str, Any]:
    """The inner `error` object of an OpenAI- or Anthropic-shaped body, from text or a dict."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {"message": body} if body else {}
    if not isinstance(body, Mapping):
        return {}
    inner = body.get("error")
    if isinstance(inner, Mapping):
        return dict(inner)
    return dict(body)


def _text_kind(text: str) -> ErrorKind | None:
    lowered = text.lower()
    for kind, pattern in _TEXT_RULES:
        if pattern.search(lowered):
            return kind
    return None


def _kind_from_codes(code: str | None, type_: str | None) -> ErrorKind | None:
    for value in (code, type_):
        if not value:
            continue
        name = value.lower()
        if name in BUDGET_CODES:
            return ErrorKind.BUDGET
        if name in RATE_LIMIT_CODES:
            return ErrorKind.RATE_LIMIT
        if name in CREDIT_CODES:
            return ErrorKind.CREDITS
        if name in AUTH_CODES:
            return ErrorKind.AUTH
        if name in CONTEXT_CODES:
            return ErrorKind.CONTEXT_TOO_LONG
        if name in BAD_REQUEST_CODES:
            return ErrorKind.BAD_REQUEST
    return None


def _kind_from_status(status: int, message: str, retry_after: float | None, has_reset: bool,
                      should_retry: bool | None) -> ErrorKind:
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 402:
        return ErrorKind.CREDITS
    if status == 429:
        if has_reset or (retry_after is not None and retry_after > LONG_WAIT_SECONDS):
            return ErrorKind.BUDGET
        text = _text_kind(message)
        if text in (ErrorKind.BUDGET, ErrorKind.CREDITS):
            return text
        if should_retry is False and retry_after is None:
            return ErrorKind.BUDGET
        return ErrorKind.RATE_LIMIT
    if status in (408, 409, 425) or status >= 500:
        return ErrorKind.TRANSIENT
    if status == 413 or _text_kind(message) is ErrorKind.CONTEXT_TOO_LONG:
        return ErrorKind.CONTEXT_TOO_LONG
    if 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.UNKNOWN


def classify_response(status: int | None, headers: Any = None, body: Any = None, *,
                      message: str | None = None, now: float | None = None) -> ErrorInfo:
    """Classify an HTTP error from its status, headers and body (text or parsed JSON)."""
    current = time.time() if now is None else now
    hdrs = _lower_headers(headers)
    err = _error_object(body)
    code = err.get("code") if isinstance(err.get("code"), str) else None
    type_ = err.get("type") if isinstance(err.get("type"), str) else None
    text = str(err.get("message") or message or "")
    retry_after = parse_retry_after(hdrs.get("retry-after"), current)
    should_retry = {"true": True, "false": False}.get(hdrs.get("x-should-retry", "").strip().lower())
    reset_at = parse_instant(err.get("reset_at") or err.get("resets_at"))
    reset_source = "error_body" if reset_at else None
    kind = ErrorKind.AUTH if status in (401, 403) else _kind_from_codes(code, type_)
    if kind is None:
        if status is not None:
            kind = _kind_from_status(status, text, retry_after, reset_at is not None, should_retry)
        else:
            kind = _text_kind(text) or ErrorKind.UNKNOWN
    if reset_at is None and retry_after is not None and kind is ErrorKind.BUDGET:
        reset_at = utc_from_epoch(current) + timedelta(seconds=retry_after)
        reset_source = "retry_after"
    return ErrorInfo(
        kind=kind, message=text or f"HTTP {status}", status=status, code=code, type=type_,
        retry_after=retry_after, reset_at=reset_at, reset_source=reset_source, should_retry=should_retry,
    )


def is_transport_error(exc: BaseException) -> bool:
    """A dropped connection or timeout, from any HTTP client, recognised without importing it."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(cls.__name__ in _TRANSPORT_CLASS_NAMES for cls in type(exc).__mro__)


def classify_exception(exc: BaseException, *, now: float | None = None) -> ErrorInfo | None:
    """Classify an exception raised by an SDK call; None when it is not an API or network error.

    None lets the caller re-raise genuine bugs (a TypeError in user code) instead of
    retrying them as if the network had failed.
    """
    if isinstance(exc, BudgetExhausted):
        return exc.info
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if isinstance(status, int):
        body: Any = getattr(exc, "body", None)
        if body is None and response is not None:
            body = getattr(response, "text", None)
        headers = getattr(response, "headers", None)
        return classify_response(status, headers, body, message=str(exc), now=now)
    if is_transport_error(exc):
        return ErrorInfo(kind=ErrorKind.TRANSIENT, message=str(exc) or type(exc).__name__)
    return None


def classify_text(text: str) -> ErrorInfo:
    """Last resort for errors that reached us as bare strings (framework callbacks, logs)."""
    return ErrorInfo(kind=_text_kind(text) or ErrorKind.UNKNOWN, message=text)
