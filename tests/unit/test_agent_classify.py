"""Error classification: code and type first, then status and headers, text last."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx2
import openai
import pytest
from tollgate.agent import BudgetExhausted, ErrorKind, classify_exception, classify_response, classify_text

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc).timestamp()
BUDGET_BODY = {"error": {"message": "budget exceeded: usage limit reached for this 5h window; resets at "
                                    "2026-11-29T15:00:00Z", "type": "budget_exceeded", "param": None,
                         "code": "budget_exceeded", "reset_at": "2026-11-29T15:00:00Z"}}


def _sdk_error(status: int, body: dict, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """A real `openai` exception, built the way the SDK builds it from a response."""
    request = httpx2.Request("POST", "http://gateway/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, content=json.dumps(body).encode(), request=request)
    client = openai.OpenAI(base_url="http://gateway/v1", api_key="sk_test")
    return client._make_status_error(f"Error code: {status} - {body}", body=body, response=response)


def test_the_gateway_budget_429_is_budget_with_the_reset_from_the_body():
    exc = _sdk_error(429, BUDGET_BODY, {"Retry-After": "10800", "x-should-retry": "false"})
    assert isinstance(exc, openai.RateLimitError)
    info = classify_exception(exc, now=NOW)
    assert info.kind is ErrorKind.BUDGET
    assert info.reset_at == datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)
    assert info.reset_source == "error_body"
    assert info.retry_after == 10800 and info.should_retry is False
    assert info.code == "budget_exceeded" and info.retriable


def test_a_budget_429_without_reset_at_takes_the_reset_from_retry_after():
    body = {"error": {"message": "spent", "type": "budget_exceeded", "code": "budget_exceeded"}}
    info = classify_response(429, {"Retry-After": "600"}, body, now=NOW)
    assert info.kind is ErrorKind.BUDGET
    assert info.reset_at.timestamp() == NOW + 600 and info.reset_source == "retry_after"


@pytest.mark.parametrize(
    ("status", "code", "type_", "headers", "kind"),
    [
        (429, "rate_limit_exceeded", "rate_limit_exceeded", {"Retry-After": "2"}, ErrorKind.RATE_LIMIT),
        (429, "insufficient_credits", "insufficient_credits", {}, ErrorKind.CREDITS),
        (429, "insufficient_quota", "insufficient_quota", {}, ErrorKind.CREDITS),
        (401, "invalid_api_key", "authentication_error", {}, ErrorKind.AUTH),
        (403, "key_revoked", "permission_error", {}, ErrorKind.AUTH),
        (403, "subscription_expired", "permission_error", {}, ErrorKind.AUTH),
        (400, "context_length_exceeded", "invalid_request_error", {}, ErrorKind.CONTEXT_TOO_LONG),
        (404, "model_not_found", "invalid_request_error", {}, ErrorKind.BAD_REQUEST),
        (500, None, "server_error", {}, ErrorKind.TRANSIENT),
        (503, None, None, {}, ErrorKind.TRANSIENT),
        (429, None, "rate_limit_error", {}, ErrorKind.RATE_LIMIT),  # Anthropic's shape
    ],
)
def test_codes_and_statuses_decide(status, code, type_, headers, kind):
    body = {"error": {"message": "some words that say nothing useful", "type": type_, "code": code}}
    info = classify_exception(_sdk_error(status, body, headers), now=NOW)
    assert info.kind is kind
    assert info.retriable is (kind in (ErrorKind.RATE_LIMIT, ErrorKind.TRANSIENT, ErrorKind.BUDGET))


def test_the_code_wins_over_misleading_text():
    # The message mentions a rate limit; the code says the window is spent.
    body = {"error": {"message": "rate limit: too many requests", "code": "budget_exceeded"}}
    assert classify_response(429, {}, body, now=NOW).kind is ErrorKind.BUDGET
    body = {"error": {"message": "budget exceeded usage limit", "code": "rate_limit_exceeded"}}
    assert classify_response(429, {}, body, now=NOW).kind is ErrorKind.RATE_LIMIT


def test_an_unnamed_429_with_a_long_wait_is_a_spent_window_and_a_short_one_a_rate_limit():
    assert classify_response(429, {"Retry-After": "3600"}, {"error": {"message": "slow down"}}, now=NOW).kind \
        is ErrorKind.BUDGET
    assert classify_response(429, {"Retry-After": "5"}, {"error": {"message": "slow down"}}, now=NOW).kind \
        is ErrorKind.RATE_LIMIT
    assert classify_response(429, {"x-should-retry": "false"}, "{}", now=NOW).kind is ErrorKind.BUDGET


def test_text_is_read_only_as_a_last_resort():
    assert classify_response(429, {}, {"error": {"message": "usage limit reached"}}, now=NOW).kind is ErrorKind.BUDGET
    assert classify_response(400, {}, {"error": {"message": "maximum context length is 8192"}}, now=NOW).kind \
        is ErrorKind.CONTEXT_TOO_LONG
    assert classify_text("Error code: 429 - budget exceeded: usage limit reached").kind is ErrorKind.BUDGET
    assert classify_text("insufficient credits").kind is ErrorKind.CREDITS
    assert classify_text("429 Too Many Requests").kind is ErrorKind.RATE_LIMIT
    assert classify_text("something odd").kind is ErrorKind.UNKNOWN


def test_retry_after_as_an_http_date():
    info = classify_response(429, {"Retry-After": "Sun, 29 Nov 2026 13:00:00 GMT"}, BUDGET_BODY["error"] | {
        "reset_at": None}, now=NOW)
    assert info.retry_after == 3600 and info.reset_at.timestamp() == NOW + 3600


def test_network_errors_are_transient_and_bugs_are_not_classified():
    request = httpx2.Request("POST", "http://gateway/v1/chat/completions")
    assert classify_exception(openai.APIConnectionError(request=request)).kind is ErrorKind.TRANSIENT
    assert classify_exception(openai.APITimeoutError(request=request)).kind is ErrorKind.TRANSIENT
    assert classify_exception(ConnectionResetError()).kind is ErrorKind.TRANSIENT
    assert classify_exception(TypeError("bad argument")) is None


def test_budget_exhausted_carries_its_info_and_reset():
    info = classify_response(429, {}, BUDGET_BODY, now=NOW)
    exc = BudgetExhausted(info)
    assert classify_exception(exc) is info
    assert exc.reset_at == info.reset_at
    assert exc.seconds_until_reset(now=NOW) == 3 * 3600
    assert "2026-11-29T15:00:00.000Z" in str(exc)


def test_malformed_bodies_do_not_crash():
    for body in (b"<html>502</html>", "", None, [1, 2], {"error": "flat string"}):
        info = classify_response(502, {}, body, now=NOW)
        assert info.kind is ErrorKind.TRANSIENT
    assert classify_response(429, {}, {"error": {"reset_at": "not a date", "code": "budget_exceeded"}},
                             now=NOW).reset_at is None
