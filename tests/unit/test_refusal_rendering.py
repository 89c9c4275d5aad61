"""Every domain refusal has one HTTP rendering, and each API writes it in its own shape."""

from __future__ import annotations

import inspect

import orjson
import pytest

from tollgate.domain import refusals
from tollgate.domain.pools import Pool
from tollgate.domain.refusals import (
    BudgetExhausted,
    Conflict,
    Invalid,
    KeyRefused,
    ModelRefused,
    NotFound,
    RateLimited,
    LedgerBusy,
    LedgerUnavailable,
    Refusal,
    RequestExceedsBudget,
    StoreUnavailable,
    TooManyFailures,
    UpstreamBroke,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tollgate.http.refusals import api_error

NOW = 1_764_000_000
POOL = Pool("sub:s1", "subscription", 140_000_000, 5 * 3600)

CASES = [
    (NotFound("no such key", param="key_id"), 404, "not_found"),
    (Invalid("name must be a non-empty string", param="name"), 400, "invalid_request"),
    (Conflict("plan exists"), 409, "conflict"),
    (KeyRefused(KeyRefused.INVALID, "invalid API key"), 401, "invalid_api_key"),
    (KeyRefused(KeyRefused.REVOKED, "revoked"), 403, "key_revoked"),
    (KeyRefused(KeyRefused.SUBSCRIPTION_EXPIRED, "expired"), 403, "subscription_expired"),
    (KeyRefused(KeyRefused.INVALID_MANAGEMENT, "bad mk"), 401, "invalid_management_key"),
    (KeyRefused(KeyRefused.INVALID_ADMIN, "bad token"), 401, "invalid_admin_token"),
    (TooManyFailures(7.5), 429, "too_many_failed_attempts"),
    (ModelRefused(ModelRefused.NOT_FOUND, "no model"), 404, "model_not_found"),
    (ModelRefused(ModelRefused.NOT_SUPPORTED, "chat only"), 400, "model_not_supported"),
    (ModelRefused(ModelRefused.NOT_ALLOWED, "not in plan"), 403, "model_not_allowed"),
    (BudgetExhausted(POOL, NOW + 3600), 429, "budget_exceeded"),
    (BudgetExhausted(Pool("credit:a", "credits", 0, None), None), 429, "insufficient_credits"),
    (RateLimited("rpm", 60, 2.5), 429, "rate_limit_exceeded"),
    (RequestExceedsBudget(POOL, 150_000_000), 400, "request_exceeds_budget"),
    (UpstreamUnavailable(["m via u: HTTP 503"], timed_out=False), 502, "upstream_unavailable"),
    (UpstreamUnavailable(["m via u: timed out"], timed_out=True), 504, "upstream_timeout"),
    (UpstreamUnavailable(["m via u: HTTP 429"], timed_out=False, retry_after=2.2), 503, "upstream_busy"),
    (UpstreamBroke("the upstream sent an answer that is not JSON"), 502, "upstream_error"),
    (UpstreamBroke("cut", timed_out=True), 504, "upstream_timeout"),
    (UpstreamRejected(422, "bad_param", "temperature is out of range"), 422, "bad_param"),
    (LedgerBusy(0.4), 503, "ledger_busy"),
    (LedgerUnavailable(0.4), 503, "ledger_unavailable"),
    (StoreUnavailable(0.4), 503, "store_unavailable"),
]


@pytest.mark.parametrize(("refusal", "status", "code"), CASES, ids=[type(c[0]).__name__ + ":" + c[2] for c in CASES])
def test_each_refusal_renders_with_its_status_and_code(refusal: Refusal, status: int, code: str) -> None:
    error = api_error(refusal)
    assert (error.status, error.code) == (status, code)
    openai = orjson.loads(error.openai_body())["error"]
    anthropic = orjson.loads(error.anthropic_body())
    envelope = orjson.loads(error.envelope_body())
    assert openai["code"] == code and openai["message"] == error.message
    assert anthropic["type"] == "error" and anthropic["error"]["message"] == error.message
    assert envelope["success"] is False and envelope["error"]["code"] == code


def test_every_concrete_refusal_in_the_domain_has_a_case() -> None:
    """A refusal added to the domain without a rendering here would fall to a generic 400."""
    concrete = {cls for _, cls in inspect.getmembers(refusals, inspect.isclass)
                if issubclass(cls, Refusal) and cls not in (Refusal, refusals.AccountError)}
    assert concrete == {type(refusal) for refusal, _, _ in CASES}


def test_the_budget_refusal_keeps_the_429_contract() -> None:
    error = api_error(BudgetExhausted(POOL, NOW + 3600))
    headers = dict(error.headers)
    assert "usage limit" in error.message and "5h window" in error.message
    assert headers[b"x-should-retry"] == b"false" and int(headers[b"retry-after"]) >= 1
    assert error.extra["reset_at"] == "2025-11-24T17:00:00Z"
    assert error.code != "insufficient_quota"


def test_a_request_that_can_never_fit_is_a_400_that_says_by_how_much() -> None:
    key_pool = Pool("key:k1", "key", 100_000, 3600)
    error = api_error(RequestExceedsBudget(key_pool, 123_456))
    assert (error.status, error.code, error.type) == (400, "request_exceeds_budget", "invalid_request_error")
    assert dict(error.headers) == {b"x-should-retry": b"false"}  # no retry-after: no reset helps
    assert "$0.000123456" in error.message and "$0.000023456 more than" in error.message
    assert "this key's whole 1h budget of $0.0001" in error.message
    assert "usage limit" not in error.message and "reset_at" not in error.extra
    anthropic = orjson.loads(error.anthropic_body())["error"]
    assert anthropic["type"] == "invalid_request_error" and anthropic["code"] == "request_exceeds_budget"


def test_model_refusals_name_the_model_parameter() -> None:
    assert api_error(ModelRefused(ModelRefused.NOT_FOUND, "no model")).param == "model"


def test_too_many_failed_operator_tokens_say_when_to_try_again() -> None:
    error = api_error(TooManyFailures(7.5))
    assert dict(error.headers)[b"retry-after"] == b"8" and "8s" in error.message
    assert dict(api_error(TooManyFailures(0.2)).headers)[b"retry-after"] == b"1"
