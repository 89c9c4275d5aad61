"""Reading fields of a JSON request body and the query string, with 400s that name the field and the problem."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from tollgate.domain.bounds import check_budget, check_window
from tollgate.domain.durations import parse_duration
from tollgate.domain.money import MoneyError, usd_from_json
from tollgate.http.errors import APIError

DAY_SECONDS = 86400
MAX_TIMESTAMP = 253402300800  # 10000-01-01T00:00:00Z


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


# -- query parameters ---------------------------------------------------------

PAGE_LIMIT_DEFAULT = 100
PAGE_LIMIT_MAX = 1000
MAX_QUERY_VALUE = 200  # an id, a number or a timestamp: anything longer is not one


def _query_value(query: dict[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is not None and len(value) > MAX_QUERY_VALUE:
        raise bad(name, f"must be at most {MAX_QUERY_VALUE} characters")
    return value


def query_int(query: dict[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole number from the query string, within [minimum, maximum]; absent is `default`."""
    text = _query_value(query, name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()):
        raise bad(name, f"must be a whole number between {minimum} and {maximum}, got {text!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise bad(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def page(query: dict[str, str]) -> tuple[int, str | None]:
    """(limit, after) of a list's page: `limit` 1 to 1000 (default 100), and `after`, the cursor: the last id
    of the page before (whether it names a row of the list is the store's to say)."""
    return query_int(query, "limit", PAGE_LIMIT_DEFAULT, 1, PAGE_LIMIT_MAX), _query_value(query, "after")


def query_time(query: dict[str, str], name: str) -> float | None:
    """A moment from the query string: ISO-8601 (`2026-01-31T12:00:00Z`, a date alone is its UTC midnight;
    no offset means UTC) or unix seconds."""
    text = _query_value(query, name)
    if text is None:
        return None
    try:
        if text.isascii() and text.replace(".", "", 1).isdigit():
            value = float(text)
        else:
            moment = datetime.fromisoformat(text)
            value = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    except (ValueError, OverflowError):
        raise bad(name, f"must be an ISO-8601 time such as 2026-01-31T12:00:00Z or unix seconds, got {text!r}") from None
    if not 0 <= value < MAX_TIMESTAMP:
        raise bad(name, "must be between 1970 and 9999")
    return value


def time_range(query: dict[str, str], now: float, default_days: int, max_days: int) -> tuple[float, float | None]:
    """(since, until) of a report: `since` and `until` moments, or `days` back from `until` (default now).

    The span is at most `max_days`, so one call never sums more than that much history. `until`
    is None when not given: up to now.
    """
    since, until = query_time(query, "since"), query_time(query, "until")
    if since is not None and "days" in query:
        raise bad("days", "give either days or since, not both")
    end = now if until is None else until
    if since is None:
        since = end - query_int(query, "days", default_days, 1, max_days) * DAY_SECONDS
    if since >= end:
        raise bad("since", "must be before until (or now)")
    if end - since > max_days * DAY_SECONDS:
        raise bad("since", f"the range must be at most {max_days} days")
    return since, until


def known(body: dict, allowed: tuple[str, ...]) -> dict:
    """`body`, refused with a 400 naming the first field it has that is not `allowed`: a typo in an
    action's options (`grace` for `graceSeconds`) must not be taken as "the default"."""
    for name in body:
        if name not in allowed:
            raise bad(name, f"is not a field here (those are {', '.join(allowed)})")
    return body


def only(body: dict, allowed: tuple[str, ...]) -> dict:
    """`body` for a partial update: refused with a 400 when it has a field not `allowed` (a typo must not
    be taken as "nothing to change"), or none of them."""
    known(body, allowed)
    if not body:
        raise APIError(400, "invalid_request", f"nothing to change: give at least one of {', '.join(allowed)}")
    return body


def not_null(body: dict, name: str) -> None:
    """A field a partial update may leave out, but not set to null."""
    if name in body and body[name] is None:
        raise bad(name, "cannot be null (leave it out to keep it as it is)")


def query_flag(query: dict[str, str], name: str) -> bool:
    """A true/false query parameter (`1`, `true`, `0`, `false`); absent is false."""
    text = (_query_value(query, name) or "false").lower()
    if text not in ("1", "true", "0", "false"):
        raise bad(name, f"must be true or false, got {text!r}")
    return text in ("1", "true")
