"""OpenAI Responses requests -> chat completions, so that every model speaks the Responses API too.

The request is translated before routing and budgeting (one pipeline for every
API: the same reservation, settlement, usage record and 429); the answer and the
stream are translated back by `responses_answer.py`. tollgate stores no
responses, so a request must carry its whole conversation: `previous_response_id`
and `conversation` are refused with a 400 that says so.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.http.checks import invalid

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(where, "must be a string")
    return value


def _content(content: Any, where: str) -> str | list[dict]:
    """A message's content as chat content: a string, or parts when it holds an image."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(where, "must be a string or a list of content parts")
    parts: list[dict] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(kind, str) and kind in TEXT_PARTS:
            parts.append({"type": "text", "text": _text(part.get("text", ""), f"{at}.text")})
        elif kind == "refusal":
            parts.append({"type": "text", "text": _text(part.get("refusal", ""), f"{at}.refusal")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise invalid(f"{at}.image_url", "an input_image needs an image_url (file ids are not supported)")
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            raise invalid(at, f"unsupported content part type {kind!r}")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _output_text(output: Any, where: str) -> str:
    """A function_call_output's output: a string, or parts whose texts are joined."""
    if isinstance(output, str):
        return output
    content = _content(output, where)
    return content if isinstance(content, str) else orjson.dumps(content).decode()


def _function_call(item: dict, where: str) -> dict:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{where}.call_id", "is required")
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments).decode()
    return {"id": call_id, "type": "function",
            "function": {"name": _text(item.get("name"), f"{where}.name"), "arguments": arguments}}


def _messages(items: Any) -> list[dict]:
    """Chat messages for the Responses `input`: a string, or a list of items."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise invalid("input", "is required: a string or a non-empty list of items")
    out: list[dict] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid(where, "must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            role = ROLES.get(role) if isinstance(role, str) else None
            if role is None:
                raise invalid(f"{where}.role", "must be user, assistant, system or developer")
            out.append({"role": role, "content": _content(item.get("content"), f"{where}.content")})
        elif kind == "function_call":
            call = _function_call(item, where)
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and (last.get("tool_calls") or not last.get("content")):
                last.setdefault("tool_calls", []).append(call)  # parallel calls: one assistant turn
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise invalid(f"{where}.call_id", "is required")
            out.append({"role": "tool", "tool_call_id": call_id,
                        "content": _output_text(item.get("output", ""), f"{where}.output")})
        elif kind == "reasoning":
            continue  # the model's own reasoning from an earlier turn: open models do not take it back
        else:
            raise invalid(f"{where}.type", f"unsupported input item type {kind!r}: tollgate takes messages, "
                          "function_call and function_call_output items")
    return out


def _tools(tools: Any) -> list[dict]:
    """Function tools as chat tools. Other kinds (web search, file search, hosted tools) are OpenAI's
    own services, which no open model behind this gateway has: left out, not refused, so that clients
    that always send them (Codex CLI) still work."""
    if not isinstance(tools, list):
        raise invalid("tools", "must be a list")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{i}]", "must be an object")
        if tool.get("type") != "function":
            continue
        function: dict = {"name": _text(tool.get("name"), f"tools[{i}].name"),
                          "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise invalid("tool_choice", "must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}")


def _response_format(text: Any) -> dict | None:
    if not isinstance(text, dict):
        raise invalid("text", "must be an object")
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {"name": fmt.get("name") or "answer", "schema": fmt.get("schema") or {}}
        if isinstance(fmt.get("strict"), bool):
            schema["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": schema}
    raise invalid("text.format.type", "must be text, json_object or json_schema")


def to_chat(body: dict) -> dict:
    """A chat-completions body for a Responses body; a 400 APIError on what it cannot take.

    OpenAI's own features that a stateless gateway in front of open models has no use for
    (`store`, `include`, `reasoning`, `prompt_cache_key`, `metadata`, `truncation`, `service_tier`,
    ...) are accepted and not forwarded: clients such as Codex CLI always send them.
    """
    for stateful in ("previous_response_id", "conversation"):
        if body.get(stateful) is not None:
            raise invalid(stateful, "is not supported: tollgate stores no responses; send the whole "
                          "conversation in `input` (as with store: false)")
    if body.get("background"):
        raise invalid("background", "is not supported: tollgate answers in the request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "is required and must be a model id such as \"auto\"")
    messages = _messages(body.get("input"))
    instructions = body.get("instructions")
    if instructions is not None:
        messages.insert(0, {"role": "system", "content": _text(instructions, "instructions")})
    chat: dict = {"model": model, "messages": messages}
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream", "must be true or false")
    chat["stream"] = bool(stream)
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise invalid("max_output_tokens", "must be a positive integer")
        chat["max_tokens"] = limit
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise invalid(name, "must be a number")
            chat[name] = value
    if body.get("tools") is not None:
        tools = _tools(body["tools"])
        if tools:
            chat["tools"] = tools
    if body.get("tool_choice") is not None and chat.get("tools"):
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if isinstance(body.get("parallel_tool_calls"), bool) and chat.get("tools"):
        chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("text") is not None:
        fmt = _response_format(body["text"])
        if fmt is not None:
            chat["response_format"] = fmt
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str):
        chat["user"] = user
    return chat
