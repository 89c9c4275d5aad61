"""Where a relayed answer goes: the OpenAI wire format, or a translation of it (Anthropic).

The flow hands the sink domain values (the exchange, the settlement, a refusal);
the sink, written at the HTTP edge, decides the bytes, the headers and the
status. That keeps HTTP out of the core.
"""

from __future__ import annotations

from typing import Protocol

from tollgate.domain.grants import Settled
from tollgate.domain.refusals import Refusal
from tollgate.proxy.exchange import Exchange
from tollgate.proxy.sse import Usage


class Sink(Protocol):
    async def reply(self, exchange: Exchange, body: bytes, obj: dict | None, settled: Settled) -> None:
        """A complete non-streamed answer: the upstream's bytes, or `obj` when it was changed."""

    def status_for(self, refusal: Refusal) -> int:
        """The status this API answers `refusal` with: the usage record keeps it."""

    async def refuse(self, exchange: Exchange, refusal: Refusal) -> None:
        """A refusal or failure before any answer was sent."""

    async def open(self, exchange: Exchange) -> None:
        """The start of a streamed answer (its cost is not known yet: only its reservation)."""

    async def events(self, events: list[bytes]) -> None:
        """OpenAI SSE events, each complete, to relay now."""

    async def close(self, exchange: Exchange, usage: Usage, settled: Settled, usage_event: dict | None,
                    failure: str | None, held: list[bytes]) -> None:
        """The end of a stream: `held` events first, then usage and the end marker, in one write.

        Usage and cost are settled by now; `failure` is set when the upstream broke off.
        """
