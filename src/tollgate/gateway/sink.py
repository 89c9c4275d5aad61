"""Where a relayed answer goes: the OpenAI wire format, or a translation of it (Anthropic)."""

from __future__ import annotations

from typing import Protocol

from tollgate.api.errors import APIError
from tollgate.gateway.sse import Usage

Headers = list[tuple[bytes, bytes]]


class Sink(Protocol):
    async def reply(self, body: bytes, obj: dict | None, headers: Headers) -> None:
        """A complete non-streamed answer: the upstream's bytes, or `obj` when it was changed."""

    async def error(self, error: APIError) -> None:
        """A refusal or failure before any answer was sent."""

    async def open(self, headers: Headers) -> None:
        """The start of a streamed answer."""

    async def events(self, events: list[bytes]) -> None:
        """OpenAI SSE events, each complete, to relay now."""

    async def close(self, usage: Usage, cost: int, usage_event: dict | None, failure: str | None,
                    held: list[bytes]) -> None:
        """The end of a stream: `held` events first, then usage and the end marker, in one write.

        Usage and cost are settled by now; `failure` is set when the upstream broke off.
        """
