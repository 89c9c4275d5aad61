"""Chat-completion answers and stream chunks -> OpenAI Responses objects and stream events.

The usage block is the Responses one (`input_tokens`, `output_tokens`,
`total_tokens`) with the cost the gateway charged beside it (`cost`,
`cost_nanos`), as chat completions add it to theirs. Parts of odd shapes from
the upstream are left out, never raised on: its bytes are not ours to trust.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tollgate.http import views


def new_id(prefix: str) -> str:
    return prefix + "_" + os.urandom(12).hex()


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_object(input_tokens: int, output_tokens: int, cached: int, cost_nanos: int) -> dict:
    return {
        "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
        "cost": views.usd(cost_nanos), "cost_nanos": cost_nanos,
    }


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> dict:
    return {"type": "message", "id": item_id or new_id("msg"), "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []}


def call_item(call_id: str, name: str, arguments: str, item_id: str | None = None, status: str = "completed") -> dict:
    return {"type": "function_call", "id": item_id or new_id("fc"), "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def response_object(request: dict, model: str, response_id: str, created: int, status: str, output: list[dict],
                    usage: dict | None, incomplete: str | None = None, error: dict | None = None) -> dict:
    """A Response object: the request's settings echoed back, as OpenAI's answers carry them."""
    return {
        "id": response_id, "object": "response", "created_at": created, "status": status,
        "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": request.get("instructions"), "max_output_tokens": request.get("max_output_tokens"),
        "model": model, "output": output, "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None, "reasoning": {"effort": None, "summary": None}, "store": False,
        "temperature": request.get("temperature"), "top_p": request.get("top_p"),
        "text": {"format": {"type": "text"}}, "tool_choice": request.get("tool_choice", "auto"),
        "tools": [t for t in _list(request.get("tools")) if isinstance(t, dict) and t.get("type") == "function"],
        "truncation": "disabled", "usage": usage, "user": None, "metadata": {},
    }


def _finish_status(finish: Any) -> tuple[str, str | None]:
    if finish == "length":
        return "incomplete", "max_output_tokens"
    if finish == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def from_chat(obj: dict, request: dict, model: str, cost_nanos: int) -> dict:
    """The Response for a whole chat completion (its usage is what was billed: the flow replaced the
    upstream's when it did not believe it)."""
    choice = _dict((_list(obj.get("choices")) or [None])[0])
    message = _dict(choice.get("message"))
    output: list[dict] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(text))
    for call in _list(message.get("tool_calls")):
        if isinstance(call, dict):
            fn = _dict(call.get("function"))
            arguments = fn.get("arguments")
            output.append(call_item(call["id"] if isinstance(call.get("id"), str) else new_id("call"),
                                    fn["name"] if isinstance(fn.get("name"), str) else "",
                                    arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()))
    usage = _dict(obj.get("usage"))
    cached = _count(_dict(usage.get("prompt_tokens_details")).get("cached_tokens"))
    status, incomplete = _finish_status(choice.get("finish_reason"))
    return response_object(request, model, new_id("resp"), int(time.time()), status, output,
                           usage_object(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")),
                                        cached, cost_nanos), incomplete)


def sse(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


@dataclass(slots=True)
class _Item:
    """One output item being streamed: a message (its text so far) or a function call."""

    index: int
    item: dict
    text: list[str] = field(default_factory=list)
    done: bool = False


class StreamTranslator:
    """Chat chunks in, Responses stream events out: one message item, then one item per tool call."""

    def __init__(self, request: dict, model: str) -> None:
        self.request = request
        self.model = model
        self.id = new_id("resp")
        self.created = int(time.time())
        self.sequence = 0
        self.items: list[_Item] = []
        self.message: _Item | None = None
        self.calls: dict[int, _Item] = {}
        self.finish: str | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse(event)

    def _response(self, status: str, usage: dict | None = None, incomplete: str | None = None,
                  error: dict | None = None) -> dict:
        output = [self._final(item) for item in self.items] if status != "in_progress" else []
        return response_object(self.request, self.model, self.id, self.created, status, output, usage, incomplete, error)

    def start(self) -> bytes:
        response = self._response("in_progress")
        return (self._event("response.created", response=response)
                + self._event("response.in_progress", response=response))

    def _open(self, item: dict) -> tuple[_Item, bytes]:
        entry = _Item(len(self.items), item)
        self.items.append(entry)
        return entry, self._event("response.output_item.added", output_index=entry.index, item=item)

    def chunk(self, obj: dict) -> list[bytes]:
        out: list[bytes] = []
        for choice in _list(obj.get("choices"))[:1]:
            if not isinstance(choice, dict):
                continue
            delta = _dict(choice.get("delta"))
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._text(text)
            for call in _list(delta.get("tool_calls")):
                if isinstance(call, dict):
                    out += self._call(call)
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                self.finish = finish
        return out

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self.message is None or self.message.done:
            self.message, added = self._open(message_item("", status="in_progress"))
            part = {"type": "output_text", "text": "", "annotations": []}
            out += [added, self._event("response.content_part.added", item_id=self.message.item["id"],
                                       output_index=self.message.index, content_index=0, part=part)]
        self.message.text.append(text)
        out.append(self._event("response.output_text.delta", item_id=self.message.item["id"],
                               output_index=self.message.index, content_index=0, delta=text, logprobs=[]))
        return out

    def _call(self, call: dict) -> list[bytes]:
        out: list[bytes] = []
        slot = call.get("index", 0)
        if not isinstance(slot, int) or isinstance(slot, bool):
            slot = 0
        fn = _dict(call.get("function"))
        entry = self.calls.get(slot)
        if entry is None:
            if self.message is not None and not self.message.done:
                out += self._close(self.message)
            call_id, name = call.get("id"), fn.get("name")
            entry, added = self._open(call_item(call_id if isinstance(call_id, str) and call_id else new_id("call"),
                                                name if isinstance(name, str) else "", "", status="in_progress"))
            self.calls[slot] = entry
            out.append(added)
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            entry.text.append(arguments)
            out.append(self._event("response.function_call_arguments.delta", item_id=entry.item["id"],
                                   output_index=entry.index, delta=arguments))
        return out

    def _final(self, entry: _Item) -> dict:
        text = "".join(entry.text)
        if entry.item["type"] == "message":
            return message_item(text, entry.item["id"])
        return call_item(entry.item["call_id"], entry.item["name"], text, entry.item["id"])

    def _close(self, entry: _Item) -> list[bytes]:
        entry.done = True
        item, where = self._final(entry), {"item_id": entry.item["id"], "output_index": entry.index}
        if item["type"] == "message":
            part = item["content"][0]
            out = [self._event("response.output_text.done", **where, content_index=0, text=part["text"], logprobs=[]),
                   self._event("response.content_part.done", **where, content_index=0, part=part)]
        else:
            out = [self._event("response.function_call_arguments.done", **where, name=item["name"],
                               arguments=item["arguments"])]
        return out + [self._event("response.output_item.done", output_index=entry.index, item=item)]

    def end(self, usage: dict) -> list[bytes]:
        """Every open item closed, then `response.completed` (or `.incomplete`) with the whole answer and usage."""
        out: list[bytes] = []
        for entry in self.items:
            if not entry.done:
                out += self._close(entry)
        status, incomplete = _finish_status(self.finish)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + [self._event(kind, response=self._response(status, usage, incomplete))]

    def fail(self, message: str) -> list[bytes]:
        """The upstream broke off: `response.failed`, with what was streamed so far."""
        error = {"code": "server_error", "message": message}
        return [self._event("response.failed", response=self._response("failed", None, None, error))]
