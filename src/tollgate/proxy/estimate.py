"""Upper bounds on a request's tokens, before it is sent, so that its reservation covers it.

With the model's own tokenizer the bound is exact content plus a small
template allowance. Without one, the bound is the UTF-8 byte length: byte-level
BPE tokenizers never make a token from less than one byte, so it cannot be
exceeded (it is about four times the real count for English, which only
makes reservations larger, never refusals wrong: see ledger/embedded.py).
"""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.proxy.upstream.base import TokenCounter

MESSAGE_OVERHEAD = 8  # role markers and separators per message, generous for every template seen
REQUEST_OVERHEAD = 16  # the assistant-turn primer and BOS/EOS
IMAGE_TOKENS = 2000  # per image part: above what high-detail images cost on common vision models
AUDIO_TOKENS = 4000


def text_bytes(text: str) -> int:
    """UTF-8 length: no byte-level BPE token is shorter than a byte, so never fewer than its tokens."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def message_text(message: Any) -> str:
    """The text a model reads from one chat message: content parts, tool calls, name."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    parts: list[str] = []
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            fn = call.get("function") or {}
            if isinstance(fn, dict):
                parts.append(str(fn.get("name") or ""))
                parts.append(str(fn.get("arguments") or ""))
    name = message.get("name")
    if isinstance(name, str):
        parts.append(name)
    return "\n".join(parts)


def _media_tokens(message: Any) -> int:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if isinstance(part, dict):
            kind = part.get("type")
            if kind in ("image_url", "image", "input_image"):
                total += IMAGE_TOKENS
            elif kind in ("input_audio", "audio"):
                total += AUDIO_TOKENS
    return total


def _count(text: str, counter: TokenCounter | None) -> int:
    return counter.count_text(text) if counter is not None else text_bytes(text)


def chat_prompt_bound(body: dict, counter: TokenCounter | None) -> int:
    """At least as many prompt tokens as the upstream will bill for this chat request."""
    messages = body.get("messages") or []
    if counter is not None:
        # The model's own count of the templated prompt (exact for the bundled model,
        # an upper bound for tokenizer files), plus what the template does not see.
        total = counter.count_chat(messages) + sum(_media_tokens(m) for m in messages)
    else:
        total = REQUEST_OVERHEAD
        for message in messages:
            total += MESSAGE_OVERHEAD + text_bytes(message_text(message)) + _media_tokens(message)
    for key in ("tools", "functions", "response_format"):
        value = body.get(key)
        if value:
            total += _count(orjson.dumps(value).decode(), counter)
    return total


def completion_prompt_bound(body: dict, counter: TokenCounter | None) -> int:
    prompt = body.get("prompt")
    total = REQUEST_OVERHEAD
    for item in prompt if isinstance(prompt, list) else [prompt]:
        if isinstance(item, str):
            total += _count(item, counter)
        elif isinstance(item, int):
            total += 1
        elif isinstance(item, list):
            total += len(item)
    suffix = body.get("suffix")
    if isinstance(suffix, str):
        total += _count(suffix, counter)
    return total


def embedding_input_bound(body: dict, counter: TokenCounter | None) -> int:
    """Embedding inputs: strings, or token arrays that count themselves."""
    value = body.get("input")
    items = value if isinstance(value, list) and value and not isinstance(value[0], int) else [value]
    total = 0
    for item in items:
        if isinstance(item, str):
            total += _count(item, counter) + 2
        elif isinstance(item, list):
            total += len(item)
    return total


def chat_prompt_count(body: dict, counter: TokenCounter | None) -> tuple[int, bool]:
    """(prompt tokens, exact) of a chat request, for a token-count endpoint.

    Exact where the model's counter is the server's own tokenizer and chat template (`exact`, the
    bundled model's) and the request holds nothing it must guess at (images, audio, `functions`,
    `response_format`); otherwise the bound that admission reserves for, which is never below the
    real count: an honest answer either way, and the flag says which.
    """
    messages = body.get("messages") or []
    guessed = any(_media_tokens(m) for m in messages) or body.get("functions") or body.get("response_format")
    if counter is not None and counter.exact and not guessed:
        tools = body.get("tools")
        try:
            return counter.count_chat(messages, tools if isinstance(tools, list) else None), True
        except ValueError:  # messages the model's template refuses: the generation would refuse them too
            counter = None
    try:
        return chat_prompt_bound(body, counter), False
    except ValueError:
        return chat_prompt_bound(body, None), False
