"""Reading and writing the instants a gateway tells us about (reset times, Retry-After).

Every datetime the toolkit keeps is timezone-aware UTC, so comparing a reset time read
from an error body with one read from `/v1/usage` or a header never mixes naive clocks.
"""

from __future__ import annotations

import email.utils
import math
from datetime import datetime, timedelta, timezone

# A header value this large is an absolute Unix time, not a number of seconds to wait.
_EPOCH_THRESHOLD = 1_000_000_000


def utc_from_epoch(seconds: float) -> datetime:
    """An aware UTC datetime for a Unix time."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def parse_instant(value: object) -> datetime | None:
    """An ISO-8601 timestamp (`2026-11-29T15:00:00Z`, with or without milliseconds) as UTC.

    Returns None for anything that is not a readable timestamp, so a malformed field
    from a server degrades to "unknown" instead of crashing the caller.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_instant(moment: datetime) -> str:
    """UTC ISO-8601 with a `Z` and milliseconds, the shape the gateway itself writes."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value: delta-seconds or an HTTP date (RFC 9110).

    Returns None when the header is absent or unreadable; never a negative number.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        parsed = email.utils.parsedate_tz(text)
        if parsed is None:
            return None
        try:
            seconds = email.utils.mktime_tz(parsed) - now
        except (OverflowError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def parse_reset_header(value: str | None, now: float) -> datetime | None:
    """An `x-budget-reset` value: ISO-8601, a Unix time, or seconds from now."""
    if value is None:
        return None
    moment = parse_instant(value)
    if moment is not None:
        return moment
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    if number >= _EPOCH_THRESHOLD:
        return utc_from_epoch(number)
    return utc_from_epoch(now) + timedelta(seconds=number)
