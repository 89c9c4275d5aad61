"""Bounds on the values operators and account owners set, checked wherever they come in.

Each value here ends up in a timestamp, a 64-bit SQLite integer or every
request's reservation. Unbounded, a typo is accepted once and then fails every
request after it (a window whose reset time is past the year 9999 answers 500);
bounded, it is a clear error naming the field where it was typed: a config
error at start, a 400 from the operator and management APIs, one line from
the CLI. The config loader, `tollgate.accounts.service` (APIs and CLI alike)
and `tollgate.http.fields` call these.

- A budget window (plan `window`, a key budget's `window`): 1 s to 365 d.
- A subscription period (`period_days`, and the days one extension adds): 1 to 3650 days; after
  renewals and extensions a subscription ends at most 36,500 days (100 years) from now.
- A key rotation's grace period (the old secret still works): 0 s to 7 d.
- Money set by hand (a plan's `budget_per_window` and `price_monthly`, a key
  budget's `limit`, one credit grant): at most $1,000,000 (10^15 nano-dollars);
  an account's credits granted in all: at most $1,000,000,000 (10^18). Sums of
  many windows' spend stay far inside SQLite's signed 64-bit integers (9.2 x 10^18).
- rpm and tpm: 1 to 10^9.
- Key metadata: a JSON object of at most 50 entries; names of 1 to 64 characters;
  values strings (at most 500 characters), numbers, true/false or null, never
  nested; at most 4096 bytes as JSON. An end-user label: at most 200 characters.

Every check raises ValueError with a message that reads after the field's name
("must be between 1s and 365d, got 100000000d").
"""

from __future__ import annotations

import json

from tollgate.domain.durations import format_duration
from tollgate.domain.money import NANOS_PER_USD, format_usd

MIN_WINDOW = 1
MAX_WINDOW = 365 * 86400
MAX_PERIOD_DAYS = 3650
MAX_AHEAD_DAYS = 36500
MAX_GRACE = 7 * 86400
MAX_BUDGET = 1_000_000 * NANOS_PER_USD
MAX_CREDITS_TOTAL = 1_000_000_000 * NANOS_PER_USD
MAX_RATE = 1_000_000_000
MAX_METADATA_ENTRIES = 50
MAX_METADATA_NAME = 64
MAX_METADATA_TEXT = 500
MAX_METADATA_BYTES = 4096
MAX_END_USER = 200


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, got {value!r}")
    return value


def check_window(seconds: int) -> int:
    """A budget window's length in seconds."""
    if not MIN_WINDOW <= _whole(seconds) <= MAX_WINDOW:
        raise ValueError(f"must be between {format_duration(MIN_WINDOW)} and {format_duration(MAX_WINDOW)}, "
                         f"got {format_duration(seconds) if seconds > 0 else seconds}")
    return seconds


def check_period_days(days: object) -> int:
    """A subscription's period in days."""
    if not 1 <= _whole(days) <= MAX_PERIOD_DAYS:
        raise ValueError(f"must be between 1 and {MAX_PERIOD_DAYS} days, got {days}")
    return days  # type: ignore[return-value]


def check_period_end(end: int, now: int) -> int:
    """When a subscription ends after a renewal or an extension (unix seconds): within 100 years of now."""
    if end - now > MAX_AHEAD_DAYS * 86400:
        raise ValueError(f"would end more than {MAX_AHEAD_DAYS} days from now")
    return end


def check_grace(seconds: object) -> int:
    """How long a rotated key's old secret keeps working, in seconds (0: not at all)."""
    if not 0 <= _whole(seconds) <= MAX_GRACE:
        raise ValueError(f"must be between 0 and {MAX_GRACE} seconds (7 days), got {seconds}")
    return seconds  # type: ignore[return-value]


def check_budget(nanos: int) -> int:
    """A budget, a price or one credit grant, in nano-dollars (not negative)."""
    if not 0 <= _whole(nanos) <= MAX_BUDGET:
        if nanos < 0:
            raise ValueError("must not be negative")
        raise ValueError(f"must be at most {format_usd(MAX_BUDGET)} dollars, got {format_usd(nanos)}")
    return nanos


def check_credits_total(nanos: int) -> int:
    """What an account has been granted in all, after a new grant."""
    if nanos > MAX_CREDITS_TOTAL:
        raise ValueError(f"would bring the account's credits granted to {format_usd(nanos)} dollars, "
                         f"above the most an account can hold ({format_usd(MAX_CREDITS_TOTAL)})")
    return nanos


def check_rate(value: object) -> int:
    """A per-minute limit (rpm or tpm)."""
    if not 1 <= _whole(value) <= MAX_RATE:
        raise ValueError(f"must be between 1 and {MAX_RATE}, got {value}")
    return value  # type: ignore[return-value]


def check_metadata(metadata: object) -> dict:
    """A key's metadata: a small flat JSON object (see the module docstring)."""
    if not isinstance(metadata, dict):
        raise ValueError(f"must be a JSON object, got {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise ValueError(f"must have at most {MAX_METADATA_ENTRIES} entries, got {len(metadata)}")
    for name, value in metadata.items():
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_METADATA_NAME:
            raise ValueError(f"entry names must be 1 to {MAX_METADATA_NAME} characters, got {str(name)[:80]!r}")
        if isinstance(value, str):
            if len(value) > MAX_METADATA_TEXT:
                raise ValueError(f"{name!r} must be at most {MAX_METADATA_TEXT} characters, got {len(value)}")
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise ValueError(f"{name!r} must be a string, a number, true, false or null, "
                             f"not {type(value).__name__} (metadata is not nested)")
    size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON, got {size}")
    return metadata


def check_end_user(value: object) -> str:
    """A key's end-user label."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_END_USER:
        raise ValueError(f"must be at most {MAX_END_USER} characters, got {len(value)}")
    return value
