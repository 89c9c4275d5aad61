"""What every upstream looks like to the relay: send an OpenAI request, get OpenAI bytes back.

An HTTP upstream relays the server's bytes as they arrive; an in-process model
produces the same wire format itself. Either way the relay sees a status, headers
and an async stream of body chunks, and can abort the request at any moment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer in time.

    `kind` is one of "connect", "timeout", "protocol", "closed"; the relay turns
    these into fallbacks or a 502/504 for the client.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class UpstreamResponse(Protocol):
    status: int
    # Response headers, names lower-cased.
    headers: dict[str, str]

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. For streams: SSE bytes, `data: {...}\\n\\n` events."""

    async def read(self) -> bytes:
        """The whole body (non-streamed requests)."""

    async def aclose(self) -> None:
        """Stop now: abort the request if the body was not read to the end.

        Called when the client goes away; an HTTP upstream closes its connection,
        an in-process model stops generating at the next token.
        """


class Upstream(Protocol):
    name: str
    # Requests in flight right now, to pick the least-loaded deployment of a model.
    inflight: int
    # False when the usage it reports is not its server's own count (an intermediary that
    # estimates usage the server left out, config `usage = "gateway"`): the gateway counts instead.
    reports_usage: bool
    # The credential it sends (an HTTP upstream's API key), or None: scrubbed from any text of the
    # upstream's that the gateway passes on or records (an error that quotes the key it was sent).
    secret: str | None

    async def send(self, path: str, body: bytes, request_id: str | None = None,
                   client_headers: Mapping[str, str] | None = None) -> UpstreamResponse:
        """POST `body` (OpenAI JSON) to `path` ("/chat/completions", "/completions", "/embeddings").

        `request_id` (a UUID) travels to HTTP upstreams in the header their configuration names
        (`X-Request-Id` by default), so their logs line up with ours; of `client_headers` (names
        lower-cased) an HTTP upstream forwards only those its configuration lists.

        Raises UpstreamError when no response head arrives (connect failure,
        first-byte timeout). Later failures surface while reading the body.
        """

    async def start(self) -> None:
        """Load models or open pools; called once before serving."""

    async def close(self) -> None: ...


class TokenCounter(Protocol):
    """A model's own tokenizer, where one is available offline."""

    # True when the counts are the server's own: its tokenizer and its chat template (a GGUF that
    # the server loads). False for an upper bound (a tokenizer without the template).
    exact: bool

    def count_text(self, text: str) -> int:
        """Tokens of `text` as a /completions prompt."""

    def count_chat(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        """Prompt tokens of a chat request, template included, as the model would count them."""

    def count_output(self, text: str) -> int:
        """Tokens of generated text (no BOS: nothing starts an answer)."""
