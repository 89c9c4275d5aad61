"""Server-sent events from an OpenAI-compatible stream, split and sorted without parsing each one.

Only the event that carries a usage object is parsed; every other event is
relayed as the bytes that arrived. The raw events are kept so that a stream cut
short can still be counted (parsed then, once).

Every event of every stream passes through here, so the checks on it are C-level
calls only: a prefix test for `[DONE]` and one compiled-regex search for a usage
object (which also skips the `"usage": null` that OpenAI puts in every chunk).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

DONE = b"data: [DONE]\n\n"
_DONE_EVENTS = (b"data: [DONE]", b"data:[DONE]")
# A "usage" key whose value is an object (not null): the key, then any spaces, tabs and the colon, then "{".
_USAGE_OBJECT = re.compile(rb'"usage"[ \t:]*\{')


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    cached_tokens: int | None = None


def usage_from(obj: object) -> Usage | None:
    """The `usage` block of an OpenAI response or chunk, if it has real numbers."""
    if not isinstance(obj, dict):
        return None
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int) or prompt < 0 or completion < 0:
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(prompt, completion, False, cached if isinstance(cached, int) else None)


class EventStream:
    """Feeds raw bytes in, hands complete events out, remembers what it saw."""

    __slots__ = ("_tail", "seen", "usage", "usage_event", "done", "pieces")

    def __init__(self) -> None:
        self._tail = b""
        self.seen: list[bytes] = []
        self.usage: Usage | None = None
        self.usage_event: dict | None = None
        self.done = False
        self.pieces = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Complete events in `data` to relay now (each ending in a blank line).

        The usage-only event and `[DONE]` are held back: the caller sends them
        after settlement, so that the stream ends only once its cost is durable.
        """
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        buffer = self._tail + data if self._tail else data
        parts = buffer.split(b"\n\n")
        self._tail = parts.pop()
        out: list[bytes] = []
        for part in parts:
            if not part or part.isspace():
                continue
            if part.startswith(_DONE_EVENTS):
                self.done = True
                continue
            if _USAGE_OBJECT.search(part) is not None:
                obj = event_json(part)
                usage = usage_from(obj)
                if usage is not None:
                    self.usage = usage
                    if isinstance(obj, dict) and not obj.get("choices"):
                        self.usage_event = obj
                        continue
            out.append(part + b"\n\n")
        self.seen.extend(out)
        self.pieces += len(out)
        return out

    def text(self) -> str:
        """Generated text seen so far (content, reasoning and tool-call arguments)."""
        texts: list[str] = []
        for event in self.seen:
            obj = event_json(event)
            if not isinstance(obj, dict):
                continue
            for choice in obj.get("choices") or ():
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta") or {}
                if not isinstance(delta, dict):
                    text = choice.get("text")
                    if isinstance(text, str):
                        texts.append(text)
                    continue
                for key in ("content", "reasoning_content", "reasoning"):
                    value = delta.get(key)
                    if isinstance(value, str):
                        texts.append(value)
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict):
                        texts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
                text = choice.get("text")
                if isinstance(text, str):
                    texts.append(text)
        return "".join(texts)


def event_json(event: bytes) -> object:
    payload = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    if not payload:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def encode_event(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"
