"""Checks on OpenAI request bodies: wrong types are a clear 400 here, not a puzzle from the upstream."""

from __future__ import annotations

from typing import Any

from tollgate.http.errors import APIError
from tollgate.proxy.call import SERVER_OUTPUT_LIMITS

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def invalid(param: str, message: str) -> APIError:
    return APIError(400, "invalid_request", f"{param}: {message}", param=param)


def _type(body: dict, name: str, kinds: tuple[type, ...], label: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise invalid(name, f"must be {label}, got a boolean")
    if not isinstance(value, kinds):
        raise invalid(name, f"must be {label}, got {type(value).__name__}")
    return value


def positive_int(body: dict, name: str, maximum: int | None = None) -> int | None:
    value = _type(body, name, (int,), "an integer")
    if value is not None and (value < 1 or (maximum is not None and value > maximum)):
        raise invalid(name, f"must be between 1 and {maximum}" if maximum else "must be at least 1")
    return value


MAX_CHOICES = 128


def output_limit(body: dict, field: str) -> None:
    """Fold every output limit the client sent into one field of `body`: the smallest.

    The client asked for at most each of them, so the smallest honours them all;
    the gateway then reserves for it (capped at the model's `max_output`) and
    forwards exactly that one field. On chat, `field` is `max_completion_tokens`
    when the client used it, else `max_tokens`; /completions knows only `max_tokens`.
    A server-specific limit of zero or less means "no limit" there: no limit of ours.
    """
    limit = positive_int(body, "max_tokens")
    completion = positive_int(body, "max_completion_tokens")
    if completion is not None:
        limit = completion if limit is None else min(limit, completion)
    folded = ("max_tokens" if field == "max_completion_tokens" else "max_completion_tokens") in body
    for name in SERVER_OUTPUT_LIMITS:
        if name in body:
            value = _type(body, name, (int,), "an integer")
            del body[name]
            if value is not None and value > 0:
                folded = True
                limit = value if limit is None else min(limit, value)
    if folded:
        body.pop("max_tokens", None)
        body.pop("max_completion_tokens", None)
        if limit is not None:
            body[field] = limit


def choices(body: dict) -> None:
    """`n` answers, generated from `best_of` candidates: the flow reserves for the larger of the two."""
    n = positive_int(body, "n", MAX_CHOICES)
    best_of = positive_int(body, "best_of", MAX_CHOICES)
    if n is not None and best_of is not None and best_of < n:
        raise invalid("best_of", f"must be at least n ({n}), got {best_of}")


def common(body: dict) -> tuple[str, bool]:
    """model and stream, plus the sampling parameters every endpoint shares."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "is required and must be a model id such as \"auto\"")
    stream = _type(body, "stream", (bool,), "true or false") or False
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        _type(body, name, (int, float), "a number")
    _type(body, "stop", (str, list), "a string or a list of strings")
    _type(body, "seed", (int,), "an integer")
    _type(body, "user", (str,), "a string")
    _type(body, "stream_options", (dict,), "an object")
    _type(body, "logit_bias", (dict,), "an object")
    return model, stream


def chat(body: dict) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "is required and must be a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages[{i}]", "must be an object with a role and content")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(f"messages[{i}].role", f"must be one of {', '.join(sorted(ROLES))}, got {role!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise invalid(f"messages[{i}].content", "must be a string or a list of content parts")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise invalid(f"messages[{i}].content[{j}]", "must be a content part with a type")
    _type(body, "tools", (list,), "a list of tools")
    _type(body, "tool_choice", (str, dict), "a string or an object")
    _type(body, "response_format", (dict,), "an object")
    _type(body, "parallel_tool_calls", (bool,), "true or false")
    output_limit(body, "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens")
    choices(body)


def completion(body: dict) -> None:
    prompt = body.get("prompt")
    ok = isinstance(prompt, str) or (
        isinstance(prompt, list) and prompt and (
            all(isinstance(p, str) for p in prompt) or all(isinstance(p, int) and not isinstance(p, bool) for p in prompt)
            or all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt)
        )
    )
    if not ok:
        raise invalid("prompt", "is required: a string, a list of strings, or token arrays")
    output_limit(body, "max_tokens")
    choices(body)


def embedding(body: dict) -> None:
    value = body.get("input")
    ok = (isinstance(value, str) and value != "") or (
        isinstance(value, list) and value and (
            all(isinstance(v, str) and v != "" for v in value)
            or all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value)
        )
    )
    if not ok:
        raise invalid("input", "is required: a non-empty string, a list of strings, or token arrays")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise invalid("encoding_format", "must be \"float\" or \"base64\"")
    positive_int(body, "dimensions")
