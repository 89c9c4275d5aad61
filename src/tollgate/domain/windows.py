"""Fixed, UTC-aligned budget windows.

Windows of a day or less start at 00:00 UTC + k x length each day, and the
day's last window ends at midnight even when the length does not divide 24 h
(a 7 h window gives 00-07, 07-14, 14-21, 21-24). Longer windows are aligned to
the Unix epoch. Credits have no window at all (`length=None`).
"""

from __future__ import annotations

DAY = 86400


def window_start(now: float, length: int | None) -> int:
    """Start (unix seconds) of the window that contains `now`."""
    if length is None:
        return 0
    t = int(now // 1)
    if length >= DAY:
        return t - t % length
    day = t - t % DAY
    return day + ((t - day) // length) * length


def window_end(start: int, length: int | None) -> int | None:
    """End of the window starting at `start` (exclusive); None for credits."""
    if length is None:
        return None
    if length >= DAY:
        return start + length
    day_end = start - start % DAY + DAY
    return min(start + length, day_end)

