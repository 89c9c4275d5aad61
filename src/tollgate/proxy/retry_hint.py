"""How long an upstream that is rate-limiting (or overloaded) asks to be left alone.

Servers say it in different headers (docs/upstream-quirks.md): `retry-after` in seconds or as an
HTTP date (RFC 9110), `retry-after-ms`, and OpenAI-style `x-ratelimit-reset-requests` /
`x-ratelimit-reset-tokens` as durations ("1s", "6m0s", "20ms"). The gateway passes the wait on
to its client as `Retry-After` when no deployment could answer, so agents wait instead of
retrying in a storm; a hint is capped, since the client's wait is the gateway's promise.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

MAX_HINT = 300.0  # seconds: a longer wait is not believed (and not passed on) as given
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")


def _seconds(text: str, now: float) -> float | None:
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.fullmatch(text)
    if match and any(match.groups()):
        h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
        return h * 3600 + m * 60 + s + ms / 1000
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - now if when.tzinfo is not None else None


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the upstream asks to wait (0 to MAX_HINT), or None when it says nothing usable."""
    now = time.time() if now is None else now
    ms = headers.get("retry-after-ms")
    if ms is not None:
        value = _seconds(ms, now)
        found = value / 1000 if value is not None else None
    else:
        found = None
    for name in ("retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        if found is not None:
            break
        raw = headers.get(name)
        if raw is not None:
            found = _seconds(raw, now)
    if found is None or found != found:  # nothing, or NaN
        return None
    return min(max(found, 0.0), MAX_HINT)  # a date in the past: now
