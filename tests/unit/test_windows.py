from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from tollgate.domain.durations import format_duration, parse_duration
from tollgate.domain.timestamps import iso
from tollgate.domain.windows import DAY, window_end, window_start


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


def test_five_hour_windows_start_at_fixed_utc_hours():
    for hour in (0, 5, 10, 15, 20):
        start = ts(f"2026-11-29T{hour:02d}:00:00")
        assert window_start(start, 5 * 3600) == start
        assert window_start(window_end(start, 5 * 3600) - 1, 5 * 3600) == start


def test_the_days_last_window_ends_at_midnight():
    start = window_start(ts("2026-11-29T22:30:00"), 5 * 3600)
    assert iso(start) == "2026-11-29T20:00:00Z"
    assert iso(window_end(start, 5 * 3600)) == "2026-11-30T00:00:00Z"


def test_credit_pools_have_no_window():
    assert window_start(ts("2026-11-29T22:30:00"), None) == 0
    assert window_end(0, None) is None


@given(st.integers(0, 4_000_000_000), st.sampled_from([1, 2, 7, 60, 1800, 3600, 5 * 3600, 7 * 3600, 8 * 3600, DAY, 7 * DAY]))
def test_every_instant_lies_in_exactly_one_aligned_window(now, length):
    start = window_start(now, length)
    end = window_end(start, length)
    assert start <= now < end
    assert end - start <= length
    if length < DAY:
        assert (start % DAY) % length == 0  # aligned to 00:00 UTC + k x length
        assert end <= start - start % DAY + DAY  # never crosses midnight
    else:
        assert start % length == 0
    # the next window starts exactly where this one ends
    assert window_start(end, length) == end


def test_durations_round_trip():
    for text, seconds in (("2s", 2), ("30m", 1800), ("5h", 18000), ("7d", 604800)):
        assert parse_duration(text) == seconds
        assert format_duration(seconds) == text
