"""What an upstream answered, read whatever its shape: the text of a whole answer, the message of an error.

Upstream output is input too (docs/upstream-quirks.md): every field is checked for its type
before it is used, and what does not fit is left out, never trusted.
"""

from __future__ import annotations

import orjson

from tollgate.proxy import estimate


def answer_text(obj: dict) -> str:
    """The text of a whole answer, to count when it reports no usage; whatever shape the upstream sent."""
    texts = []
    choices = obj.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            calls = message.get("tool_calls")
            if calls is not None and not isinstance(calls, list):
                message = {**message, "tool_calls": None}  # a shape no tool call has: its text is not counted
            texts.append(estimate.message_text(message))
            for key in ("reasoning_content", "reasoning"):  # the reasoning some servers return beside the answer
                if isinstance(message.get(key), str):
                    texts.append(message[key])
        if isinstance(choice.get("text"), str):
            texts.append(choice["text"])
    return "".join(texts)


def without_secret(text: str, secret: str | None) -> str:
    """`text` with every copy of `secret` (the upstream's own API key) taken out.

    Some providers quote the key they were sent in the message of a 401 ("Incorrect API key
    provided: ..."); that message goes on to the client and into the usage record and the request
    log, and the operator's key must reach none of them.
    """
    return text.replace(secret, "[redacted]") if secret else text


def error_text(raw: bytes) -> tuple[str, str]:
    """(message, code) of an upstream's error body, in whichever shape it came (docs/upstream-quirks.md):
    OpenAI's `{"error": {...}}`, `{"error": "text"}`, vLLM's top-level `message`, FastAPI's `detail`."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        error = obj.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or "upstream error")[:1000], str(error.get("code") or "upstream_error")[:100]
        if isinstance(error, str):
            return error[:1000], "upstream_error"
        for key in ("message", "detail"):
            if obj.get(key):
                text = obj[key] if isinstance(obj[key], str) else orjson.dumps(obj[key]).decode()
                return text[:1000], "upstream_error"
    return (raw[:300].decode("utf-8", "replace") or "upstream error"), "upstream_error"
