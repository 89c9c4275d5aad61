"""Reading fields of a JSON request body, with 400s that name the field and the problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollgate.domain.bounds import check_budget, check_window
from tollgate.domain.durations import parse_duration
from tollgate.domain.money import MoneyError, usd_from_json
from tollgate.http.errors import APIError


def bad(param: str, message: str) -> APIError:
    return APIError(400, "invalid_request", f"{param}: {message}", param=param)


def obj(body: Any) -> dict:
    if not isinstance(body, dict):
        raise APIError(400, "invalid_request", "the request body must be a JSON object")
    return body


def string(body: dict, name: str, *, required: bool = True, default: str | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad(name, "is required")
        return default
    if not isinstance(value, str) or not value.strip():
        raise bad(name, f"must be a non-empty string, got {type(value).__name__}")
    return value


def integer(body: dict, name: str, *, required: bool = True, minimum: int = 0, default: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad(name, "is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(name, f"must be a whole number, got {value!r}")
    if value < minimum:
        raise bad(name, f"must be at least {minimum}")
    return value


def dollars(body: dict, name: str, *, required: bool = True, positive: bool = False) -> int | None:
    """Dollars as nano-dollars; accepts a JSON number or a decimal string such as "12.50"."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad(name, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad(name, f"must be an amount of dollars, got {value!r}")
    try:
        nanos = usd_from_json(value)
    except MoneyError as exc:
        raise bad(name, str(exc)) from None
    if nanos < 0 or (positive and nanos == 0):
        raise bad(name, "must be more than zero" if positive else "must not be negative")
    return nanos


def duration(body: dict, name: str, *, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad(name, "is required")
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise bad(name, str(exc)) from None


def key_budget(body: dict) -> tuple[int | None, int | None]:
    """An optional per-key budget: `{"limit": 0.05, "window": "1h"}`."""
    budget = body.get("budget")
    if budget is None:
        return None, None
    if not isinstance(budget, dict):
        raise bad("budget", "must be an object such as {\"limit\": 0.05, \"window\": \"1h\"}")
    try:
        limit = dollars(budget, "limit", positive=True)
        window = duration(budget, "window", required=False) or 5 * 3600
    except APIError as exc:
        raise bad(f"budget.{exc.param}", exc.message.partition(": ")[2]) from None
    return bounded("budget.limit", limit, check_budget), bounded("budget.window", window, check_window)


def bounded(param: str, value: Any, check: Callable[[Any], Any]) -> Any:
    """`value` through one of `tollgate.domain.bounds`' checks; out of bounds is a 400 naming `param`."""
    try:
        return check(value)
    except ValueError as exc:
        raise bad(param, str(exc)) from None
