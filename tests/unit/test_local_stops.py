"""Stop sequences over streamed pieces: nothing of a stop sequence leaks, nothing else is lost."""

from __future__ import annotations

import pytest

from tollgate.proxy.upstream.local.stops import StopMatcher


def run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = []
    for piece in pieces:
        text, hit = matcher.feed(piece)
        out.append(text)
        if hit:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


def test_no_stops_passes_everything_through_immediately():
    matcher = StopMatcher([])
    assert matcher.feed("abc") == ("abc", False)


def test_stop_inside_one_piece():
    assert run(["END"], ["hello END world"]) == ("hello ", True)


def test_stop_split_across_pieces_never_leaks():
    matcher = StopMatcher(["</s>"])
    assert matcher.feed("answer <") == ("answer ", False)
    assert matcher.feed("/") == ("", False)
    assert matcher.feed("s> more") == ("", True)


def test_false_alarm_prefix_is_released():
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("ST") == ("", False)
    assert matcher.feed("ay") == ("STay", False)


def test_held_text_is_flushed_at_the_end():
    assert run(["\n\n"], ["line", "\n"]) == ("line\n", False)


def test_earliest_of_several_stops_wins():
    assert run(["b", "a"], ["xxab"]) == ("xx", True)


@pytest.mark.parametrize("cut", range(1, 12))
def test_any_split_gives_the_same_result(cut):
    text = "Hello, STOP world"
    whole = run(["STOP"], [text])
    assert run(["STOP"], [text[:cut], text[cut:]]) == whole == ("Hello, ", True)
