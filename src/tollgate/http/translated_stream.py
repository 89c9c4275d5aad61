"""The streaming half of a sink whose API is translated from chat completions (Anthropic, Responses).

The flow hands such a sink OpenAI chunks as they arrive; a translator turns each into the API's
own events. Opening the stream, translating what arrives and ending it are the same for every
translated API; only what the translator is and what the last events say differ.
"""

from __future__ import annotations

from typing import Protocol

from tollgate.http.headers import stream_headers
from tollgate.http.request import Send
from tollgate.proxy.exchange import Exchange
from tollgate.proxy.sse import event_json, split_events

SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class ChunkTranslator(Protocol):
    def start(self) -> bytes:
        """The events that open the API's stream."""

    def chunk(self, obj: dict) -> list[bytes]:
        """The API's events for one OpenAI chunk (none, one or several)."""


class TranslatedStream:
    """Mixed into a sink: `send` and `translator` are the sink's."""

    send: Send
    translator: ChunkTranslator | None

    async def begin_stream(self, exchange: Exchange) -> None:
        assert self.translator is not None
        await self.send({"type": "http.response.start", "status": 200, "headers": SSE + stream_headers(exchange)})
        await self.send({"type": "http.response.body", "body": self.translator.start(), "more_body": True})

    def translate(self, events: list[bytes]) -> list[bytes]:
        assert self.translator is not None
        out: list[bytes] = []
        for event in split_events(events):
            obj = event_json(event)
            if isinstance(obj, dict):
                out += self.translator.chunk(obj)
        return out

    async def events(self, events: list[bytes]) -> None:
        out = self.translate(events)
        if out:
            await self.send({"type": "http.response.body", "body": b"".join(out), "more_body": True})

    async def end_stream(self, tail: list[bytes]) -> None:
        await self.send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})
