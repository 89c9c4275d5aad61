"""The project's one timestamp format: ISO-8601 UTC with a Z, whole seconds."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC with a Z, whole seconds: 2026-11-29T15:00:00Z."""
    if ts is None:
        return None
    return _iso(int(ts))


@lru_cache(maxsize=4096)
def _iso(ts: int) -> str:
    # Window ends repeat on every request of a window: formatting each once is enough.
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
