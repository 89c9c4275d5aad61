"""Durations written as text in config and in the API: "2s", "30m", "5h", "7d".

A duration is at most `MAX_DURATION` (ten years) and its number at most nine
digits: anything longer is a typo or an attack, and would overflow the
timestamps and 64-bit integers it is added to.
"""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d{1,9})\s*([smhd])\s*$")
MAX_DURATION = 3650 * 86400


def parse_duration(text: str) -> int:
    """Seconds in a duration such as "5h". Raises ValueError with the reason."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as \"5h\", got {text!r}")
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"{text[:40]!r} is not a duration; use a whole number and s, m, h or d, such as \"5h\"")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    if seconds > MAX_DURATION:
        raise ValueError(f"{text.strip()!r} is longer than {format_duration(MAX_DURATION)}")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact text for a number of seconds: 18000 -> "5h"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
