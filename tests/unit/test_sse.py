"""The stream sorter against a plain event-by-event reference, on streams cut at random places."""

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.proxy.sse import EventStream, split_events


def chunk(text=None, usage=None, choices=True, spaced=False):
    obj = {"id": "c", "object": "chat.completion.chunk",
           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}] if choices else []}
    obj["usage"] = usage
    sep = (", ", ": ") if spaced else (",", ":")
    return "data: " + json.dumps(obj, separators=sep) + "\n\n"


def stream(words, usage_included: bool, spaced: bool, crlf: bool) -> bytes:
    events = [": keep-alive\n\n"] + [chunk(w, spaced=spaced) for w in words]
    if usage_included:
        events.append(chunk(usage={"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7 + len(words)},
                            choices=False, spaced=spaced))
    events.append("data: [DONE]\n\n")
    text = "".join(events)
    return (text.replace("\n", "\r\n") if crlf else text).encode()


def reference(body: bytes):
    """Event by event: what should be relayed, what is the usage."""
    relayed, usage = [], None
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not event.strip():
            continue
        if event.startswith(b"data: [DONE]"):
            break
        data = event[6:] if event.startswith(b"data: ") else None
        obj = json.loads(data) if data else None
        if isinstance(obj, dict) and isinstance(obj.get("usage"), dict):
            usage = obj["usage"]
            if not obj["choices"]:
                continue
        relayed.append(event)
    return relayed, usage


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([" the", " cat", " usage", ' "usage": {', "data: x"]), max_size=30),
       st.booleans(), st.booleans(), st.booleans(), st.integers(0, 2**32))
def test_random_cuts_relay_exactly_what_an_event_by_event_reading_would(words, with_usage, spaced, crlf, seed):
    body = stream(words, with_usage, spaced, crlf)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(body)), k=min(len(body) - 1, rng.randint(0, 8))))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    events = EventStream()
    out = []
    for piece in pieces:
        out += events.feed(piece)
        if events.done:
            break
    expected, usage = reference(body)
    assert split_events(out) == expected
    assert events.done
    assert (events.usage is not None) == with_usage
    if with_usage:
        assert events.usage.completion_tokens == usage["completion_tokens"]
        assert events.usage_event["choices"] == []
    assert events.pieces == sum(1 for e in expected if e.startswith(b"data:"))
    assert events.text() == "".join(words)
