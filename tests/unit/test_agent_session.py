"""Session JSON: lossless round trips, strict reading."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tollgate.agent import CorruptEntry, Session
from tollgate.agent.session import FORMAT

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool"]),
                           "content": st.text(max_size=50) | st.none()}),
    min_size=1, max_size=6,
)
ids = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=40)
instants = st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                    timezones=st.just(timezone.utc)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@given(session_id=ids, parent=st.none() | ids, msgs=messages, step=st.integers(0, 10**6),
       attempts=st.integers(0, 100), reset=instants, meta=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
       waiting=st.lists(ids, max_size=3), cost=st.integers(0, 10**15))
def test_sessions_round_trip(session_id, parent, msgs, step, attempts, reset, meta, waiting, cost):
    session = Session(session_id=session_id, model="m", messages=msgs, parent_id=parent, tool_names=["a", "b"],
                      step=step, attempts=attempts, resumes=attempts + 1, reset_at=reset, reset_source="usage",
                      parked_at=reset, reason="budget_exceeded", message="spent", waiting_on=waiting, metadata=meta,
                      cost_nanos=cost, prompt_tokens=step, completion_tokens=step)
    assert Session.from_json(session.to_json()) == session


def _valid() -> dict:
    return Session(session_id="s1", model="m", messages=[{"role": "user", "content": "hi"}]).to_dict()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"format": "tollgate.agent.session/99"}, "unknown format"),
        ({"session_id": ""}, "session_id"),
        ({"session_id": "a\nb"}, "session_id"),
        ({"messages": []}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages[0]"),
        ({"step": -1}, "step"),
        ({"attempts": True}, "attempts"),
        ({"reset_at": "tomorrow"}, "reset_at"),
        ({"metadata": []}, "metadata"),
        ({"waiting_on": [1]}, "waiting_on"),
        ({"model": None}, "model"),
    ],
)
def test_reading_is_strict(change, complaint):
    data = _valid() | change
    with pytest.raises(CorruptEntry, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        Session.from_dict(data)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff", b"[]", b"null", json.dumps({"format": FORMAT}).encode()])
def test_garbage_is_corrupt_not_a_crash(raw):
    with pytest.raises(CorruptEntry):
        Session.from_json(raw)


def test_copy_is_deep():
    session = Session(session_id="s", model="m", messages=[{"role": "user", "content": "a"}])
    clone = session.copy(step=3)
    clone.messages.append({"role": "assistant", "content": "b"})
    assert len(session.messages) == 1 and session.step == 0 and clone.step == 3
