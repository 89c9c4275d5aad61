"""End to end: a real OpenClaw gateway with the budget-park plugin, a key with a 2-second budget
window. The session hits the spent budget, is parked, and is continued to completion by the
plugin after a reset, with nobody touching the session.
"""

from __future__ import annotations

import json

import pytest
from openclaw_harness import message_text
from openclaw_rig import GatewayRig, Spender
from openclaw_target import Target, wait_until

pytestmark = pytest.mark.slow


def journal(rig: GatewayRig, session_key: str) -> list[str]:
    if not rig.journal.exists():
        return []
    rows = [json.loads(line) for line in rig.journal.read_text().splitlines() if line.strip()]
    return [r["event"] for r in rows if r.get("sessionKey") == session_key]


def start_parked_session(rig: GatewayRig, spender: Spender, marker: str) -> str:
    """A turn that fails on the spent budget. The spender refills its spend a few milliseconds
    after each reset; a turn that lands in that gap succeeds, and is simply tried again."""
    for attempt in range(3):
        key = f"agent:main:park-{marker}-{attempt}"
        wait_until(lambda: spender.windows_spent >= 1, 30, what="the spender to spend a window")
        status, body = rig.gateway.turn(key, f"Write a two-line status report. Marker {marker}.")
        if status == 429:
            assert "budget exceeded: usage limit reached" in body["error"]["message"], body
            return key
        assert status == 200, (status, body)
    raise AssertionError("three turns in a row slipped past the spent budget")


def test_parked_session_is_resumed_to_completion(gateway_rig: GatewayRig, target: Target):
    rig, marker = gateway_rig, "e2e7781"
    with Spender(target, rig.park_key) as spender:
        key = start_parked_session(rig, spender, marker)
        wait_until(lambda: "parked" in journal(rig, key), 30, what="the plugin to park the session")
        # While the window keeps being spent, the plugin's resume meets the budget again.
        wait_until(lambda: {"re-parked", "postponed", "resumed"} & set(journal(rig, key)), 60,
                   what="the first resume attempt")
        assert spender.error is None, spender.error
    # From the next window on, the budget is there; the plugin resumes on its own.
    wait_until(lambda: "resumed" in journal(rig, key) or "gave-up" in journal(rig, key), 90,
               what="the resumed session to finish")
    events = journal(rig, key)
    assert events[0] == "parked" and events[-1] == "resumed", (events, rig.gateway.log_tail())

    # The resumed request carried the whole transcript: the original prompt and the resume note.
    ok = [r for r in target.records(rig.park_key) if r.status == 200 and r.user_agent.startswith("OpenAI/JS")]
    # (A turn that slipped past the spent budget before the park also carries the marker, so the
    # resumed request is the one that carries the marker and the plugin's resume note.)
    resumed = [r for r in ok if any(marker in m["text"] for m in r.transcript)
               and any("budget has reset" in m["text"] for m in r.transcript)]
    assert len(resumed) == 1, [r.transcript for r in ok]
    texts = [m["text"] for m in resumed[0].transcript]
    first = next(i for i, t in enumerate(texts) if marker in t)
    assert any("budget has reset" in t for t in texts[first + 1:]), texts

    # The session, read back through the gateway protocol: the model answered the resume.
    history = rig.gateway.call("chat.history", {"sessionKey": key, "limit": 100})["messages"]
    resumes = [i for i, m in enumerate(history) if m["role"] == "user" and "budget has reset" in message_text(m)]
    assert resumes, [message_text(m)[:80] for m in history]
    after_last = [message_text(m) for m in history[resumes[-1] + 1:] if m["role"] == "assistant"]
    assert target.reply_text in after_last, after_last
    notes = [message_text(m) for m in history if m["role"] == "assistant" and "parked" in message_text(m)]
    assert notes, "the person using the session was told it was parked"

    queue = json.loads((rig.state_dir / "queue.json").read_text())
    assert queue["entries"] == []
