"""The 429 contract of SPEC section 2, worded so that agents stop instead of sleeping for hours.

"usage limit" in the message makes agents such as OpenClaw stop at once and
show our text; `x-should-retry: false` stops the OpenAI and Anthropic SDKs
from retrying; the code is never `insufficient_quota` (OpenClaw then hides our
message and locks the key).
"""

from __future__ import annotations

import math
import time

from tollgate.api.errors import APIError
from tollgate.budget.errors import BudgetExhausted, RateLimited
from tollgate.budget.windows import iso
from tollgate.config.durations import format_duration


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


def rate_refusal(exc: RateLimited) -> APIError:
    unit = "requests" if exc.limit == "rpm" else "tokens"
    wait = max(1, math.ceil(exc.retry_after))
    return APIError(
        429, "rate_limit_exceeded",
        f"rate limit reached: {exc.value} {unit} per minute for this key; retry in {wait}s",
        type="rate_limit_exceeded",
        headers=[(b"retry-after", str(wait).encode()), (b"x-should-retry", b"true")],
    )
