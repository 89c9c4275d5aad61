"""Anthropic Messages <-> OpenAI chat completions, so that every model speaks both.

Requests are translated to the OpenAI shape before routing and budgeting (one
pipeline for both APIs); answers and stream events are translated back.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from tollgate.http.checks import invalid
from tollgate.proxy.plausible import cache_parts
from tollgate.proxy.sse import usage_from

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


# -- request ---------------------------------------------------------------------

def _text_of(content: Any, where: str) -> str:
    """The text of a string or of a list of blocks (its text blocks, whose text must be a string)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise invalid(where, "must be a string or a list of text blocks")
    texts = []
    for j, block in enumerate(content):
        if isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text", "")
            if not isinstance(text, str):
                raise invalid(f"{where}[{j}].text", "must be a string")
            texts.append(text)
    return "\n".join(texts)


def _image_part(block: dict, where: str) -> dict:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(where, "an image block needs a source")
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        raise invalid(where, "image source type must be \"base64\" or \"url\"")
    return {"type": "image_url", "image_url": {"url": url}}


def _user_messages(content: Any, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise invalid(where, "must be a string or a list of content blocks")
    results: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        at = f"{where}[{j}]"
        if kind == "text":
            text = block.get("text", "")
            if not isinstance(text, str):
                raise invalid(f"{at}.text", "must be a string")
            parts.append({"type": "text", "text": text})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "tool_result":
            result = block.get("content")
            text = _text_of(result, f"{at}.content")
            if block.get("is_error"):
                text = f"[error] {text}"
            results.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text})
        elif kind == "document":
            source = block.get("source") or {}
            if not isinstance(source, dict):
                raise invalid(f"{at}.source", "must be an object")
            parts.append({"type": "text", "text": str(source.get("data", "")) if source.get("type") == "text" else ""})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise invalid(at, f"unsupported content block type {kind!r}")
    messages = list(results)
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        messages.append({"role": "user", "content": "\n".join(p["text"] for p in parts) if only_text else parts})
    return messages


def _assistant_message(content: Any, where: str) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise invalid(where, "must be a string or a list of content blocks")
    texts, calls = [], []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append({"id": str(block.get("id", "")), "type": "function",
                          "function": {"name": str(block.get("name", "")),
                                       "arguments": orjson.dumps(block.get("input", {})).decode()}})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise invalid(f"{where}[{j}]", f"unsupported content block type {kind!r} in an assistant turn")
    message: dict = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        raise invalid("tool_choice", "must be an object such as {\"type\": \"auto\"}")
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": str(choice.get("name", ""))}}
    raise invalid("tool_choice.type", "must be auto, any, tool or none")


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "is required")
    return model


def _messages(body: dict) -> list[dict]:
    """The OpenAI messages of the system prompt and the turns.

    A `system` turn inside `messages` (Claude Code sends one after the first user turn) is folded
    into the one system prompt, in order: open models' chat templates take a single leading system
    message, and some refuse one anywhere else. Thinking blocks are dropped (no open model takes
    them back); `cache_control` on any block is ignored (no upstream of ours caches on request).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "is required and must be a non-empty list")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise invalid("system", "must be a string or a list of text blocks")
    prompts = [_text_of(system, "system")] if system is not None else []
    out: list[dict] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages[{i}]", "must be an object with a role and content")
        role, content = message.get("role"), message.get("content")
        if role == "user":
            out.extend(_user_messages(content, f"messages[{i}].content"))
        elif role == "assistant":
            out.append(_assistant_message(content, f"messages[{i}].content"))
        elif role == "system":
            prompts.append(_text_of(content, f"messages[{i}].content"))
        else:
            raise invalid(f"messages[{i}].role", "must be \"user\", \"assistant\" or \"system\"")
    if not out:
        raise invalid("messages", "needs at least one user or assistant turn")
    if prompts:
        out.insert(0, {"role": "system", "content": "\n\n".join(p for p in prompts if p)})
    return out


def _tools(body: dict, chat: dict) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools", "must be a list")
        chat["tools"] = [
            {"type": "function", "function": {"name": str(t.get("name", "")), "description": str(t.get("description", "")),
                                              "parameters": t.get("input_schema") or {"type": "object"}}}
            for t in tools if isinstance(t, dict)
        ]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])


def prompt_of(body: dict) -> dict:
    """The OpenAI chat body of what a model reads from an Anthropic body (model, messages, tools):
    what `count_tokens` counts, which needs no `max_tokens`. Raises a 400 APIError on bad input."""
    chat: dict = {"model": _model(body), "messages": _messages(body)}
    _tools(body, chat)
    return chat


def to_openai(body: dict) -> dict:
    """An OpenAI chat body for an Anthropic Messages body; raises a 400 APIError on bad input.

    Fields with no counterpart on an open model are dropped, never refused, so that clients built
    for Anthropic's API work as they are: `thinking`, `context_management`, `output_config`
    (Claude Code sends all three), `service_tier`, `container`, `mcp_servers`, `cache_control`.
    """
    model = _model(body)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise invalid("max_tokens", "is required and must be a positive integer")
    out = _messages(body)
    chat: dict = {"model": model, "messages": out, "max_tokens": max_tokens}
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream", "must be true or false")
    chat["stream"] = bool(stream)
    for source, target in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k")):
        value = body.get(source)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise invalid(source, "must be a number")
            chat[target] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise invalid("stop_sequences", "must be a list of strings")
        chat["stop"] = stops
    _tools(body, chat)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    return chat


# -- answers -----------------------------------------------------------------------

def message_id() -> str:
    return "msg_" + os.urandom(12).hex()


def _parse_arguments(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, (str, bytes)):
        return {} if arguments is None else {"value": arguments}
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _tool_use(call: Any) -> dict | None:
    """A tool_use block for one OpenAI tool call, or None for something that is not one."""
    if not isinstance(call, dict):
        return None
    fn = _dict(call.get("function"))
    name, call_id = fn.get("name"), call.get("id")
    return {"type": "tool_use", "id": call_id if isinstance(call_id, str) and call_id else "toolu_" + os.urandom(8).hex(),
            "name": name if isinstance(name, str) else "", "input": _parse_arguments(fn.get("arguments"))}


def _stop_reason(finish: Any) -> str:
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def from_openai(obj: dict, model: str) -> dict:
    """An Anthropic Messages answer for an OpenAI chat completion (parts of odd shapes are left out)."""
    choice = _dict((_list(obj.get("choices")) or [None])[0])
    message = _dict(choice.get("message"))
    content: list[dict] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in _list(message.get("tool_calls")):
        block = _tool_use(call)
        if block is not None:
            content.append(block)
    return {
        "id": message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": _stop_reason(choice.get("finish_reason")), "stop_sequence": None, "usage": _answer_usage(obj),
    }


def usage_object(prompt_tokens: Any, output_tokens: Any, cache_read: int | None = None, cache_write: int | None = None) -> dict:
    """Anthropic's usage object, in Anthropic's meaning: `input_tokens` is the rest of the prompt, neither
    read from nor written to the cache, and the prompt is the sum of the three fields (what Anthropic's
    clients add up, Claude Code to measure its context: docs/pricing.md)."""
    read, write = cache_read or 0, cache_write or 0
    rest = prompt_tokens - read - write if type(prompt_tokens) is int else prompt_tokens
    return {"input_tokens": rest, "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
            "output_tokens": output_tokens}


def _answer_usage(obj: dict) -> dict:
    """The usage of a whole answer, from its OpenAI usage block wherever the server put it (proxy/sse.py).

    The flow only leaves the upstream's block in the body when it believed its counts (else it
    writes its own, with no cache parts), and the cache parts are held to the checks settlement
    applied (`plausible.cache_parts`): the client is shown the parts it was billed for.
    """
    reported = usage_from(obj)
    if reported is None:
        return usage_object(0, 0)
    prompt = reported.prompt_tokens
    hits, writes = cache_parts(reported.cached_tokens, reported.cache_write_tokens,
                               prompt if type(prompt) is int else 0)
    return usage_object(prompt, reported.completion_tokens, hits, writes)


def sse(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamTranslator:
    """OpenAI chunks in, Anthropic stream events out, one block open at a time."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.index = -1
        self.open_kind: str | None = None
        self.tool_slots: dict[int, int] = {}
        self.finish: str | None = None

    def start(self) -> bytes:
        message = {"id": message_id(), "type": "message", "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": usage_object(0, 0)}
        return sse("message_start", {"type": "message_start", "message": message})

    def _close_block(self) -> list[bytes]:
        if self.open_kind is None:
            return []
        self.open_kind = None
        return [sse("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _open_block(self, block: dict) -> list[bytes]:
        out = self._close_block()
        self.index += 1
        self.open_kind = block["type"]
        out.append(sse("content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block}))
        return out

    def chunk(self, obj: dict) -> list[bytes]:
        """The events for one OpenAI chunk; parts of odd shapes (a null choice, a tool call that is a string)
        are left out, never raised on: the upstream's bytes are not ours to trust."""
        out: list[bytes] = []
        for choice in _list(obj.get("choices")):
            if not isinstance(choice, dict):
                continue
            delta = _dict(choice.get("delta"))
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self.open_kind != "text":
                    out += self._open_block({"type": "text", "text": ""})
                out.append(sse("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                       "delta": {"type": "text_delta", "text": text}}))
            for call in _list(delta.get("tool_calls")):
                if isinstance(call, dict):
                    out += self._tool_delta(call)
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                self.finish = finish
        return out

    def _tool_delta(self, call: dict) -> list[bytes]:
        out: list[bytes] = []
        slot = call.get("index", 0)
        if not isinstance(slot, int) or isinstance(slot, bool):
            slot = 0
        fn = _dict(call.get("function"))
        if slot not in self.tool_slots:
            name, call_id = fn.get("name"), call.get("id")
            out += self._open_block({"type": "tool_use",
                                     "id": call_id if isinstance(call_id, str) and call_id else "toolu_" + os.urandom(8).hex(),
                                     "name": name if isinstance(name, str) else "", "input": {}})
            self.tool_slots[slot] = self.index
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": self.tool_slots[slot],
                                                   "delta": {"type": "input_json_delta", "partial_json": arguments}}))
        return out

    def end(self, input_tokens: int, output_tokens: int, cache_read: int | None = None,
            cache_write: int | None = None) -> list[bytes]:
        """The closing events; their usage is the settled usage (the counts the request was billed on)."""
        out = self._close_block()
        out.append(sse("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(self.finish or "stop"), "stop_sequence": None},
            "usage": usage_object(input_tokens, output_tokens, cache_read, cache_write),
        }))
        out.append(sse("message_stop", {"type": "message_stop"}))
        return out
