"""Server-sent events from an OpenAI-compatible stream, split and sorted without parsing each one.

Only the event that carries a usage object is parsed; every other event is
relayed as the bytes that arrived. The usage found is only the upstream's word
(`Reported`): proxy/plausible.py checks it before anything is billed. The raw
events are kept so that a stream cut short can still be counted (parsed then, once).

Every event of every stream passes through here, so the checks on it are C-level
calls only: a prefix test for `[DONE]` and one compiled-regex search for a usage
object (which also skips the `"usage": null` that OpenAI puts in every chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tollgate.domain.pricing import TokenUsage
from tollgate.domain.usage import BOUND, UPSTREAM

DONE = b"data: [DONE]\n\n"
# One event larger than this is not an event: an upstream sending bytes with no event boundary.
MAX_EVENT_BYTES = 16 << 20


def _done_at(block: bytes) -> int:
    """Where the `data: [DONE]` event starts in `block` (at an event's start), or -1.

    Searched from the end, where it is: a whole stream read at once costs no scan.
    """
    for marker in (b"data: [DONE]", b"data:[DONE]"):
        at = block.rfind(marker)
        while at > 0 and block[at - 2:at] != b"\n\n":
            at = block.rfind(marker, 0, at)
        if at >= 0:
            return at
    return -1


def _has_usage_object(event: bytes) -> bool:
    """Whether the event's `usage` is an object (not `null`), whatever the spacing."""
    at = event.find(b'"usage"')
    while at >= 0:
        rest = event[at + 7:at + 12].lstrip(b" \t:")
        if rest.startswith(b"{"):
            return True
        at = event.find(b'"usage"', at + 7)
    return False


@dataclass(slots=True)
class Usage:
    """Token counts the flow settles on: the upstream's once checked (proxy/plausible.py), or counted here."""

    prompt_tokens: int
    completion_tokens: int
    basis: str = UPSTREAM  # tollgate.domain.usage: UPSTREAM, COUNTED or BOUND
    cached_tokens: int | None = None
    # Why the upstream's numbers were not taken as given (the gateway's bound stands in), or None.
    doubt: str | None = None
    cache_write_tokens: int | None = None  # prompt tokens written to the provider's cache (part of prompt_tokens)

    @property
    def parts(self) -> TokenUsage:
        """The counts as the price formula takes them (a part not reported is none)."""
        return TokenUsage(self.prompt_tokens, self.completion_tokens, self.cached_tokens or 0,
                          self.cache_write_tokens or 0)

    @property
    def estimated(self) -> bool:
        """Not the upstream's own numbers (what clients see as `usage.estimated`)."""
        return self.basis != UPSTREAM

    @property
    def bounded(self) -> bool:
        return self.basis == BOUND


@dataclass(frozen=True, slots=True)
class Reported:
    """An upstream's usage block as it came: any JSON values, never used before proxy/plausible.py checks them."""

    prompt_tokens: object
    completion_tokens: object
    cached_tokens: object = None
    cache_write_tokens: object = None


# Where OpenAI-compatible servers put the prompt's cache parts, first found wins. Every one counts
# tokens inside `prompt_tokens`: hits (read from the cache) and writes (stored into it).
#   OpenAI, vLLM, OpenRouter: prompt_tokens_details.cached_tokens, OpenRouter also .cache_write_tokens
#   Anthropic's names (LiteLLM and other translators): cache_read_input_tokens, cache_creation_input_tokens
#   DeepSeek: prompt_cache_hit_tokens (and prompt_cache_miss_tokens, the rest)
_CACHED_KEYS = ("cache_read_input_tokens", "prompt_cache_hit_tokens")
_WRITE_KEYS = ("cache_creation_input_tokens",)


def _first(usage: dict, details: object, detail_key: str, keys: tuple[str, ...]) -> object:
    value = details.get(detail_key) if isinstance(details, dict) else None
    for key in keys:
        if value is not None:
            break
        value = usage.get(key)
    return value


def _usage_block(obj: dict) -> object:
    """Where a server put the usage (docs/upstream-quirks.md): at the top (OpenAI and most), under
    `x_groq` (Groq's streams), or inside the choice (Moonshot's streams: `choices[0].usage`)."""
    usage = obj.get("usage")
    if isinstance(usage, dict):
        return usage
    vendor = obj.get("x_groq")
    if isinstance(vendor, dict) and isinstance(vendor.get("usage"), dict):
        return vendor["usage"]
    choices = obj.get("choices")
    if isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], dict):
        return choices[0].get("usage")
    return None


def usage_from(obj: object) -> Reported | None:
    """The usage block of an OpenAI response or chunk, if it has one (its numbers unchecked)."""
    if not isinstance(obj, dict):
        return None
    usage = _usage_block(obj)
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    details = usage.get("prompt_tokens_details")
    return Reported(usage.get("prompt_tokens"), usage.get("completion_tokens", 0),
                    _first(usage, details, "cached_tokens", _CACHED_KEYS),
                    _first(usage, details, "cache_write_tokens", _WRITE_KEYS))


class EventStream:
    """Feeds raw bytes in, hands complete events out, remembers what it saw."""

    __slots__ = ("_tail", "seen", "usage", "usage_event", "done", "error")

    def __init__(self) -> None:
        self._tail: bytes | bytearray = b""  # the start of an event still arriving (grown in place once it spans reads)
        self.seen: list[bytes] = []
        self.usage: Reported | None = None
        self.usage_event: dict | None = None
        self.done = False
        self.error: str | None = None  # set when the bytes cannot be a stream: nothing more is taken

    @property
    def pieces(self) -> int:
        """Events relayed so far (counted only when needed: for a stream cut short)."""
        return sum(blob.count(b"\n\ndata:") + blob.startswith(b"data:") for blob in self.seen)

    def feed(self, data: bytes) -> list[bytes]:
        """Complete events in `data` to relay now, as one slice of the bytes that arrived.

        The usage-only event and `[DONE]` are held back: the caller sends them
        after settlement, so that the stream ends only once its cost is durable.
        Everything is found with C-level searches over the whole read; the
        events in between are never split apart or copied one by one. An event
        still arriving grows in place and only its new bytes are searched, so a
        stream with no event boundary costs linear time, up to MAX_EVENT_BYTES.
        """
        if self.error is not None:
            return []
        if self._tail:
            tail = self._tail
            if type(tail) is not bytearray:
                tail = self._tail = bytearray(tail)
            held = len(tail)
            tail += data
            since = held - 3 if held > 3 else 0  # a boundary may straddle the old end ("\r\n" + "\r\n")
            if tail.find(b"\n\n", since) < 0 and tail.find(b"\n\r\n", since) < 0:
                if len(tail) > MAX_EVENT_BYTES:
                    self.error = f"the upstream sent more than {MAX_EVENT_BYTES} bytes without ending an event"
                    self._tail = b""
                return []
            buffer = bytes(tail)
        else:
            buffer = data
        if b"\r" in buffer:  # CRLF servers; a CR at the end waits in the tail for its LF
            buffer = buffer.replace(b"\r\n", b"\n")
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._tail = buffer
            return []
        complete, self._tail = buffer[: end + 2], buffer[end + 2:]
        done_at = _done_at(complete)
        if done_at >= 0:
            self.done = True
            complete = complete[:done_at]
        # OpenAI sends the usage chunk last, just before [DONE]: only the last event of each
        # read can hold it, so nothing else is searched (a stream read whole costs no scan).
        before = complete.rfind(b"\n\n", 0, len(complete) - 2)
        start = 0 if before < 0 else before + 2
        last = complete[start:]
        if b'"usage"' in last and _has_usage_object(last):
            obj = event_json(last)
            usage = usage_from(obj)
            if usage is not None:
                self.usage = usage
                if isinstance(obj, dict) and not obj.get("choices"):
                    self.usage_event = obj
                    complete = complete[:start]
        if not complete.strip():
            return []
        self.seen.append(complete)
        return [complete]

    def text(self) -> str:
        """Generated text seen so far (content, reasoning and tool-call arguments)."""
        texts: list[str] = []
        for event in split_events(self.seen):
            obj = event_json(event)
            if not isinstance(obj, dict):
                continue
            choices = obj.get("choices")
            for choice in choices if isinstance(choices, list) else ():
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
                calls = delta.get("tool_calls")
                for call in calls if isinstance(calls, list) else ():
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict):
                        texts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
                text = choice.get("text")
                if isinstance(text, str):
                    texts.append(text)
        return "".join(texts)


def event_json(event: bytes) -> object:
    """The JSON of one event's data line(s), or None."""
    if event.startswith(b"data:") and b"\ndata:" not in event:  # one data line: the usual case
        payload = event[5:].strip()
    else:
        payload = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    if not payload:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def split_events(blobs: list[bytes]) -> list[bytes]:
    """The single events inside relayed slices (each slice holds whole events)."""
    return [event for blob in blobs for event in blob.split(b"\n\n") if event.strip()]


def encode_event(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"
