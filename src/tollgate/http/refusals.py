"""Domain refusals as HTTP errors: the one place that gives each a status, a code and headers.

The 429 contract of SPEC section 2 is worded so that agents stop instead of
sleeping for hours:
"usage limit" in the message makes agents such as OpenClaw stop at once and
show our text; `x-should-retry: false` stops the OpenAI and Anthropic SDKs
from retrying; the code is never `insufficient_quota` (OpenClaw then hides our
message and locks the key).
"""

from __future__ import annotations

import math
import time

from tollgate.domain.durations import format_duration
from tollgate.domain.money import format_usd
from tollgate.domain.refusals import (
    AccountError,
    BudgetExhausted,
    Conflict,
    KeyRefused,
    LedgerBusy,
    LedgerUnavailable,
    ModelRefused,
    NotFound,
    RateLimited,
    Refusal,
    RequestExceedsBudget,
    StoreUnavailable,
    TooManyFailures,
    UpstreamBroke,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tollgate.domain.timestamps import iso
from tollgate.http.errors import APIError


def budget_refusal(exc: BudgetExhausted, now: float | None = None) -> APIError:
    now = time.time() if now is None else now
    pool = exc.pool
    if pool.kind == "credits":
        return APIError(
            429, "insufficient_credits",
            "insufficient credits: the account's prepaid balance cannot pay for this request; add credits to continue",
            type="insufficient_credits", headers=[(b"x-should-retry", b"false")], extra={"reset_at": None},
        )
    window = format_duration(pool.window) if pool.window else "budget"
    whose = "this key's" if pool.kind == "key" else "this"
    reset = iso(exc.resets_at)
    retry_after = max(1, math.ceil((exc.resets_at or now) - now))
    return APIError(
        429, "budget_exceeded",
        f"budget exceeded: usage limit reached for {whose} {window} window; resets at {reset}",
        type="budget_exceeded",
        headers=[(b"retry-after", str(retry_after).encode()), (b"x-should-retry", b"false"),
                 (b"x-budget-reset", reset.encode() if reset else b"")],
        extra={"reset_at": reset},
    )


def never_fits_refusal(exc: RequestExceedsBudget) -> APIError:
    """A 400, not the budget 429: no reset makes this request fit, so nothing should wait for one."""
    pool = exc.pool
    whose = "this key's" if pool.kind == "key" else "this"
    window = f"{format_duration(pool.window)} " if pool.window else ""
    return APIError(
        400, RequestExceedsBudget.reason,
        f"request exceeds budget: its smallest possible cost (the prompt and one output token per answer, "
        f"${format_usd(exc.smallest_cost)}) is ${format_usd(exc.excess)} more than {whose} whole {window}budget of "
        f"${format_usd(pool.limit)}; no reset will make it fit: shorten the prompt, use a cheaper model or a larger budget",
        type="invalid_request_error", headers=[(b"x-should-retry", b"false")],
    )


def rate_refusal(exc: RateLimited) -> APIError:
    unit = "requests" if exc.limit == "rpm" else "tokens"
    wait = max(1, math.ceil(exc.retry_after))
    return APIError(
        429, "rate_limit_exceeded",
        f"rate limit reached: {exc.value} {unit} per minute for this key; retry in {wait}s",
        type="rate_limit_exceeded",
        headers=[(b"retry-after", str(wait).encode()), (b"x-should-retry", b"true")],
    )


_KEY_STATUS = {KeyRefused.REVOKED: 403, KeyRefused.SUBSCRIPTION_EXPIRED: 403}
_MODEL_STATUS = {ModelRefused.NOT_FOUND: 404, ModelRefused.NOT_SUPPORTED: 400, ModelRefused.NOT_ALLOWED: 403}


def _account_error(refusal: AccountError) -> APIError:
    if isinstance(refusal, NotFound):
        return APIError(404, "not_found", refusal.message, param=refusal.param)
    if isinstance(refusal, Conflict):
        return APIError(409, "conflict", refusal.message, param=refusal.param)
    return APIError(400, "invalid_request", refusal.message, param=refusal.param)


def _key_refused(refusal: KeyRefused) -> APIError:
    status = _KEY_STATUS.get(refusal.reason, 401)
    kind = "permission_error" if status == 403 else None
    if refusal.reason == KeyRefused.INVALID:
        kind = "invalid_request_error"
    return APIError(status, refusal.reason, refusal.message, type=kind)


def _too_many_failures(refusal: TooManyFailures) -> APIError:
    wait = max(1, math.ceil(refusal.retry_after))
    return APIError(
        429, refusal.reason,
        f"too many wrong operator tokens from this address: wait {wait}s before the next try",
        headers=[(b"retry-after", str(wait).encode())],
    )


def _upstream_unavailable(refusal: UpstreamUnavailable) -> APIError:
    failures = "; ".join(refusal.failures)
    if refusal.timed_out:
        return APIError(504, "upstream_timeout", "the upstream did not answer in time: " + failures)
    if refusal.retry_after is not None:
        # The upstream is rate-limiting or overloaded and said for how long: a 503 the client may
        # retry after that wait (never a 429, which here means the client's own budget or limits).
        wait = max(1, math.ceil(refusal.retry_after))
        return APIError(503, "upstream_busy", f"the upstream is busy; retry in {wait} s: " + failures,
                        headers=[(b"retry-after", str(wait).encode())])
    return APIError(502, "upstream_unavailable", "no upstream could serve this request: " + failures)


def _upstream_broke(refusal: UpstreamBroke) -> APIError:
    if refusal.timed_out:
        return APIError(504, "upstream_timeout", "the upstream did not finish its answer in time")
    return APIError(502, "upstream_error", refusal.message)


def _unavailable(code: str, what: str, retry_after: float) -> APIError:
    """A shared part of the scaled gateway (Redis, PostgreSQL) did not answer: a 503 to retry shortly."""
    wait = max(1, math.ceil(retry_after))
    return APIError(503, code, f"{what}; retry in {wait} s", headers=[(b"retry-after", str(wait).encode())])


def api_error(refusal: Refusal) -> APIError:
    """The HTTP error for a domain refusal (each API then writes it in its own shape)."""
    if isinstance(refusal, BudgetExhausted):
        return budget_refusal(refusal)
    if isinstance(refusal, RateLimited):
        return rate_refusal(refusal)
    if isinstance(refusal, RequestExceedsBudget):
        return never_fits_refusal(refusal)
    if isinstance(refusal, KeyRefused):
        return _key_refused(refusal)
    if isinstance(refusal, TooManyFailures):
        return _too_many_failures(refusal)
    if isinstance(refusal, ModelRefused):
        return APIError(_MODEL_STATUS[refusal.reason], refusal.reason, refusal.message, param="model")
    if isinstance(refusal, AccountError):
        return _account_error(refusal)
    if isinstance(refusal, UpstreamUnavailable):
        return _upstream_unavailable(refusal)
    if isinstance(refusal, UpstreamBroke):
        return _upstream_broke(refusal)
    if isinstance(refusal, LedgerUnavailable):  # before LedgerBusy: it is one
        return _unavailable(refusal.reason, "the gateway cannot reach its shared budget ledger", refusal.retry_after)
    if isinstance(refusal, StoreUnavailable):
        return _unavailable(refusal.reason, "the gateway's database is not answering", refusal.retry_after)
    if isinstance(refusal, LedgerBusy):
        wait = max(1, math.ceil(refusal.retry_after))
        return APIError(503, "ledger_busy", f"the gateway is busy writing its ledger; retry in {wait} s",
                        headers=[(b"retry-after", str(wait).encode())])
    if isinstance(refusal, UpstreamRejected):
        return APIError(refusal.upstream_status, refusal.code, refusal.message)
    return APIError(400, "invalid_request", refusal.message, param=refusal.param)
