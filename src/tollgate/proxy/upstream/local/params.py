"""Validate an OpenAI chat/completions request body into what the local model needs.

Checks follow OpenAI's own (types and ranges, `n`, `stream_options` without
`stream`), so a client sees the same 400s it would see from api.openai.com.
Parameters a llama.cpp model cannot honour are refused (`n` > 1, `logprobs`,
`suffix`) rather than silently ignored; harmless ones (`user`, `logit_bias`,
`tool_choice`, `parallel_tool_calls`, `metadata`, `store`) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tollgate.proxy.upstream.local.errors import RequestError

MAX_STOPS = 4
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


@dataclass
class GenerationParams:
    kind: str  # "chat" | "completion"
    model: str
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # None, "json_object", or a JSON schema (dict) for "json_schema".
    response_format: str | dict | None = None
    # chat
    messages: list[dict] = field(default_factory=list)
    tools: list[dict] | None = None
    # completion: text, or token ids given directly
    prompt: str | list[int] = ""
    echo: bool = False


def _number(body: dict, name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"'{name}' must be a number, got {type(value).__name__}.", param=name)
    if not lo <= value <= hi:
        raise RequestError(
            f"Invalid '{name}': {value} is out of range; expected a value between {lo} and {hi}.",
            param=name,
            code="decimal_above_max_value" if value > hi else "decimal_below_min_value",
        )
    return float(value)


def _integer(body: dict, name: str, lo: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"'{name}' must be an integer.", param=name, code="invalid_type")
    if lo is not None and value < lo:
        raise RequestError(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {lo}, "
            f"but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    return value


def _bool(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"'{name}' must be a boolean.", param=name, code="invalid_type")
    return value


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise RequestError("'stop' must be a string or an array of strings.", param="stop")
    if len(stops) > MAX_STOPS:
        raise RequestError(
            f"Invalid 'stop': array too long. Expected at most {MAX_STOPS} items.", param="stop"
        )
    return [s for s in stops if s]


def _response_format(body: dict) -> str | dict | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise RequestError(
            "'response_format.type' must be one of 'text', 'json_object', 'json_schema'.",
            param="response_format",
        )
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return "json_object"
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
        raise RequestError(
            "'response_format.json_schema' must be an object with a 'schema' object.",
            param="response_format.json_schema",
        )
    return spec.get("schema") or {"type": "object"}


def _common(kind: str, body: dict) -> GenerationParams:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", param="model")
    n = _integer(body, "n", lo=1)
    if n not in (None, 1):
        raise RequestError("This model only supports n=1.", param="n", code="unsupported_value")
    stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise RequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if options is not None and not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object.", param="stream_options")
    max_tokens = _integer(body, "max_tokens", lo=1)
    max_completion = _integer(body, "max_completion_tokens", lo=1)
    limits = [v for v in (max_tokens, max_completion) if v is not None]
    return GenerationParams(
        kind=kind,
        model=model,
        stream=stream,
        include_usage=bool(options and _bool(options, "include_usage")),
        max_tokens=min(limits) if limits else None,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        stop=_stop(body),
        seed=_integer(body, "seed"),
        response_format=_response_format(body),
    )


def _message(index: int, message: Any) -> dict:
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise RequestError(f"Invalid type for '{param}': expected an object.", param=param)
    role = message.get("role")
    if role not in ROLES:
        raise RequestError(
            f"Invalid value for '{param}.role': expected one of {', '.join(ROLES)}.",
            param=f"{param}.role",
        )
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(
                    f"Invalid content part '{param}.content[{j}]' ({kind}): "
                    "this model accepts text only.",
                    param=f"{param}.content[{j}]",
                )
            value = part.get(part["type"])
            if not isinstance(value, str):
                raise RequestError(
                    f"'{param}.content[{j}].{part['type']}' must be a string.",
                    param=f"{param}.content[{j}]",
                )
            parts.append(value)
        text = "".join(parts)
    else:
        raise RequestError(
            f"Invalid type for '{param}.content': expected a string or an array of parts.",
            param=f"{param}.content",
        )
    # The template sees OpenAI's fields, with content flattened to text;
    # "developer" is OpenAI's newer name for "system".
    out = {k: v for k, v in message.items() if k not in ("role", "content")}
    out["role"] = "system" if role == "developer" else role
    out["content"] = text
    return out


def normalize_messages(messages: Any) -> list[dict]:
    """OpenAI messages as the chat template expects them (text content, known roles)."""
    if not isinstance(messages, list):
        raise RequestError("'messages' must be an array.", param="messages")
    if not messages:
        raise RequestError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    return [_message(i, m) for i, m in enumerate(messages)]


def normalize_tools(tools: Any) -> list[dict] | None:
    if tools is None:
        return None
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("function"), dict) for t in tools
    ):
        raise RequestError(
            "'tools' must be an array of {\"type\": \"function\", \"function\": {...}}.",
            param="tools",
        )
    return tools or None


def parse_chat(body: dict) -> GenerationParams:
    params = _common("chat", body)
    if _bool(body, "logprobs") or body.get("top_logprobs"):
        raise RequestError("This model does not return logprobs.", param="logprobs")
    params.messages = normalize_messages(body.get("messages"))
    params.tools = normalize_tools(body.get("tools"))
    return params


def parse_completion(body: dict) -> GenerationParams:
    params = _common("completion", body)
    if body.get("logprobs"):
        raise RequestError("This model does not return logprobs.", param="logprobs")
    if body.get("suffix") is not None:
        raise RequestError("This model does not support 'suffix'.", param="suffix")
    if _integer(body, "best_of", lo=1) not in (None, 1):
        raise RequestError("This model only supports best_of=1.", param="best_of")
    params.echo = _bool(body, "echo")
    prompt = body.get("prompt")
    # OpenAI accepts a batch of prompts; with n=1 and one generation at a time
    # we accept a batch of exactly one.
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        params.prompt = prompt
    elif isinstance(prompt, list) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in prompt
    ):
        params.prompt = list(prompt)
    elif isinstance(prompt, list):
        raise RequestError(
            "This model accepts one prompt per request: a string, an array of token ids, "
            "or an array holding one of those.",
            param="prompt",
        )
    else:
        raise RequestError("'prompt' must be a string or an array of token ids.", param="prompt")
    return params
