"""The usage record: what one request cost, and why."""

from __future__ import annotations

from dataclasses import dataclass

# A record's `status` is the HTTP status its client saw (the edge picks it for a
# refusal); the core itself only ever writes these four.
OK = 200
CLIENT_GONE = 499  # the client left before the answer was complete
UPSTREAM_FAILED = 502  # the upstream broke off, timed out or sent garbage after answering
GATEWAY_FAILED = 500  # the gateway itself failed mid-request (a bug): settled all the same

# Where a record's token counts come from (its `usage_basis`). Only UPSTREAM is the server's own
# word; the other two are the gateway's, and say how far to trust them.
UPSTREAM = "upstream"  # the upstream's usage block, checked (proxy/plausible.py)
COUNTED = "counted"  # counted here with the model's own tokenizer and chat template, as the server counts
BOUND = "bound"  # an upper bound: never below the real count, usually above it


@dataclass(slots=True)
class UsageRecord:
    request_id: str
    created_at: float
    account_id: str
    key_id: str
    subscription_id: str | None
    model: str
    upstream_model: str | None
    route: str | None
    endpoint: str
    status: int
    input_tokens: int
    output_tokens: int
    cost: int
    latency_ms: float
    estimated: bool
    stream: bool
    window_start: int | None = None
    key_window_start: int | None = None
    fallbacks: int = 0
    error: str | None = None
    session: str | None = None
    cached_prefix_tokens: int | None = None
    request_text: str | None = None
    client: str | None = None  # the caller's User-Agent, cut to 200 characters
    usage_basis: str | None = None  # UPSTREAM, COUNTED or BOUND; None when nothing was used
    # Prompt tokens written to the provider's cache (a part of input_tokens, as cached_prefix_tokens is), and
    # what cache pricing saved against every prompt token at the input price (nano-dollars; negative when
    # cache-write premiums cost more than the hits saved). None: not reported / nothing priced.
    cache_write_tokens: int | None = None
    cache_saved: int | None = None
    # Milliseconds from arrival to the first streamed event relayed to the client; None when the answer was
    # not streamed or no event came before the end (migration 0012). New fields go last, nullable.
    ttft_ms: float | None = None

