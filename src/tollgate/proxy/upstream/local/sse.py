"""Server-sent events as OpenAI writes them."""

from __future__ import annotations

import orjson

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
JSON_HEADERS = {"content-type": "application/json"}


def event(payload: dict) -> bytes:
    """One `data: {json}\\n\\n` event (orjson never emits raw newlines)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"
