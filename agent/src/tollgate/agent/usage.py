"""What the gateway says about a key's budget: `GET /v1/usage` and the budget response headers.

Money arrives as JSON numbers in USD. It is read as Decimal from the JSON text (or from a
float's shortest repr when only parsed JSON is at hand) and kept as integer nano-dollars
(`money.usd_nanos`, re-exported here), so `remaining` is exact and comparisons with
thresholds never suffer float rounding.

Uses only the standard library (urllib), so it works whatever HTTP stack the SDK uses.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollgate.agent.classify import classify_response
from tollgate.agent.errors import AgentError, ErrorInfo, ErrorKind
from tollgate.agent.timefmt import parse_instant, parse_reset_header
from tollgate.agent.money import usd_nanos


class UsageError(AgentError):
    """`/v1/usage` could not be read; `info` says whether the key itself is the problem."""

    def __init__(self, info: ErrorInfo) -> None:
        self.info = info
        super().__init__(f"GET /v1/usage failed: {info.reason}: {info.message}")


@dataclass(frozen=True)
class BudgetStatus:
    """A key's budget as of one reading. Any field the server left out is None."""

    limit_nanos: int | None = None
    spent_nanos: int | None = None
    remaining_nanos: int | None = None
    resets_at: datetime | None = None
    duration: str | None = None
    plan_slug: str | None = None
    plan_status: str | None = None
    credits_nanos: int | None = None
    key_type: str | None = None
    cost_nanos: int | None = None  # the request's cost, from `x-request-cost` (headers only)
    source: str = "usage"  # "usage" or "headers"

    def is_current(self, now: float) -> bool:
        """False once the window this reading describes has reset, so its `remaining` is stale."""
        return self.resets_at is None or self.resets_at.timestamp() > now


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_usage(payload: str | bytes | Mapping[str, Any]) -> BudgetStatus:
    """Read a `/v1/usage` answer, bare or wrapped in `{"success": true, "data": {...}}`."""
    if isinstance(payload, (str, bytes, bytearray)):
        try:
            data: Any = json.loads(payload, parse_float=Decimal)
        except ValueError as exc:
            raise UsageError(ErrorInfo(kind=ErrorKind.TRANSIENT, message=f"unreadable /v1/usage body: {exc}")) from exc
    else:
        data = payload
    if not isinstance(data, Mapping):
        raise UsageError(ErrorInfo(kind=ErrorKind.TRANSIENT, message="/v1/usage body is not an object"))
    if isinstance(data.get("data"), Mapping) and "budget" not in data:
        data = data["data"]
    budget, plan = _section(data, "budget"), _section(data, "plan")
    limit, spent = usd_nanos(budget.get("limit")), usd_nanos(budget.get("spent"))
    remaining = usd_nanos(budget.get("remaining"))
    if remaining is None and limit is not None and spent is not None:
        remaining = max(0, limit - spent)
    return BudgetStatus(
        limit_nanos=limit,
        spent_nanos=spent,
        remaining_nanos=remaining,
        resets_at=parse_instant(budget.get("resets_at") or budget.get("reset_at")),
        duration=_text(budget.get("duration")),
        plan_slug=_text(plan.get("slug")),
        plan_status=_text(plan.get("status")),
        credits_nanos=usd_nanos(_section(data, "credits").get("balance")),
        key_type=_text(_section(data, "key").get("type")),
    )


def budget_from_headers(headers: Any, now: float | None = None) -> BudgetStatus | None:
    """The `x-budget-*` and `x-request-cost` headers of a successful response, if any."""
    if headers is None:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    hdrs = {str(k).lower(): str(v) for k, v in items}
    if not any(name in hdrs for name in ("x-budget-remaining", "x-budget-limit", "x-request-cost")):
        return None
    current = time.time() if now is None else now
    return BudgetStatus(
        limit_nanos=usd_nanos(hdrs.get("x-budget-limit")),
        remaining_nanos=usd_nanos(hdrs.get("x-budget-remaining")),
        resets_at=parse_reset_header(hdrs.get("x-budget-reset"), current),
        cost_nanos=usd_nanos(hdrs.get("x-request-cost")),
        source="headers",
    )


def usage_url(base_url: str) -> str:
    """`…/v1/usage` for an OpenAI-style base URL, with or without the `/v1` suffix."""
    base = base_url.rstrip("/")
    return f"{base}/usage" if base.endswith("/v1") else f"{base}/v1/usage"


class UsageClient:
    """Reads `GET /v1/usage` for one key. Cheap enough to call before every resume."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self.url = usage_url(base_url)
        self._api_key = api_key
        self.timeout = timeout

    @classmethod
    def from_client(cls, client: Any, *, timeout: float = 10.0) -> UsageClient | None:
        """Build one from an `openai` client's `base_url` and `api_key`; None if it has neither."""
        base_url, api_key = getattr(client, "base_url", None), getattr(client, "api_key", None)
        if not base_url or not isinstance(api_key, str) or not api_key:
            return None
        return cls(str(base_url), api_key, timeout=timeout)

    def fetch(self) -> BudgetStatus:
        """The key's budget now. Raises `UsageError` with a classified `info` on failure."""
        request = urllib.request.Request(
            self.url, headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read() if exc.fp is not None else b""
            raise UsageError(classify_response(exc.code, exc.headers, raw)) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise UsageError(ErrorInfo(kind=ErrorKind.TRANSIENT, message=str(exc))) from exc
        return parse_usage(body)

    async def afetch(self) -> BudgetStatus:
        """`fetch` on a worker thread, so an event loop never blocks on the request."""
        return await asyncio.to_thread(self.fetch)
