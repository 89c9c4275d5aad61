"""Tools are plain Python callables; this module describes them to the model and runs them.

A function's name, docstring and annotated parameters become an OpenAI function schema,
so `def search(query: str, limit: int = 5) -> str` needs no decorator. While a tool runs,
`current_tool_context()` tells it which session and tool call it serves; sub-agents use
that to record their parent.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                               list: "array", tuple: "array", dict: "object"}


@dataclass(frozen=True)
class Tool:
    """A callable the model may call, with the schema it is shown."""

    name: str
    fn: Callable[..., Any]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def schema(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _annotation_schema(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _annotation_schema(options[0]) if len(options) == 1 else {}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(annotation))}
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return {"type": "array", "items": _annotation_schema(args[0])} if args else {"type": "array"}
    if origin is dict:
        return {"type": "object"}
    kind = _JSON_TYPES.get(annotation)
    return {"type": kind} if kind else {}


def tool_from_function(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> Tool:
    """Describe `fn` from its signature: annotated parameters, defaults mean optional."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to untyped parameters
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        properties[param.name] = _annotation_schema(hints.get(param.name, Any))
        if param.default is param.empty:
            required.append(param.name)
    doc = inspect.getdoc(fn) or ""
    return Tool(
        name=name or fn.__name__,
        fn=fn,
        description=description if description is not None else doc.split("\n\n")[0].strip(),
        parameters={"type": "object", "properties": properties, "required": required},
    )


def as_tool(item: Tool | Callable[..., Any]) -> Tool:
    return item if isinstance(item, Tool) else tool_from_function(item)


def parse_arguments(raw: Any) -> dict[str, Any]:
    """The model's arguments as a dict; models sometimes send "" for no arguments."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("tool arguments must be a JSON object")
    return value


def format_result(value: Any) -> str:
    """A tool's return value as the text of a `tool` message."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def unanswered_tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls of the last assistant message that have no `tool` reply yet.

    Non-empty only when a session was parked in the middle of running its tools (a
    sub-agent ran out of budget); resuming runs these before calling the model again.
    """
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "assistant":
            answered = {m.get("tool_call_id") for m in messages[index + 1:] if m.get("role") == "tool"}
            return [c for c in message.get("tool_calls") or [] if c.get("id") not in answered]
        if message.get("role") != "tool":
            return []
    return []


@dataclass(frozen=True)
class ToolContext:
    """Which session and call a running tool serves, and where that session parks."""

    session_id: str
    tool_call_id: str
    queue: Any  # ParkingQueue | None (kept untyped to avoid an import cycle)


_CURRENT_TOOL: contextvars.ContextVar[ToolContext | None] = contextvars.ContextVar("tollgate_tool", default=None)


def current_tool_context() -> ToolContext | None:
    """The context of the tool running now, or None outside a tool."""
    return _CURRENT_TOOL.get()


@contextlib.contextmanager
def running_tool(context: ToolContext) -> Iterator[None]:
    token = _CURRENT_TOOL.set(context)
    try:
        yield
    finally:
        _CURRENT_TOOL.reset(token)
