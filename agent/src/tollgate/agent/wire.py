"""Reading a chat completion from any OpenAI-compatible client into plain data.

The `openai` SDK returns pydantic models, other clients return dicts; the loop only ever
sees the `ChatReply` built here, and the transcript only ever holds plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollgate.agent.usage import BudgetStatus


@dataclass(frozen=True)
class ChatReply:
    """One successful model call, reduced to what the loop needs."""

    message: dict[str, Any]  # the assistant message, ready to append to the transcript
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    budget: BudgetStatus | None  # from the response's x-budget-* headers

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return list(self.message.get("tool_calls") or [])

    @property
    def content(self) -> str | None:
        return self.message.get("content")


def field(obj: Any, name: str, default: Any = None) -> Any:
    """`obj.name` or `obj[name]`, whichever the client's objects support."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_reply(response: Any, budget: BudgetStatus | None) -> ChatReply:
    """Normalise a chat completion (model object or dict) into a `ChatReply`."""
    choices = field(response, "choices") or []
    if not choices:
        raise ValueError("chat completion has no choices")
    choice = choices[0]
    msg = field(choice, "message") or {}
    message: dict[str, Any] = {"role": "assistant", "content": field(msg, "content")}
    calls = []
    for call in field(msg, "tool_calls") or []:
        function = field(call, "function") or {}
        calls.append({
            "id": field(call, "id"),
            "type": "function",
            "function": {"name": field(function, "name"), "arguments": field(function, "arguments") or "{}"},
        })
    if calls:
        message["tool_calls"] = calls
    usage = field(response, "usage")
    return ChatReply(
        message=message,
        prompt_tokens=_int(field(usage, "prompt_tokens")) if usage is not None else None,
        completion_tokens=_int(field(usage, "completion_tokens")) if usage is not None else None,
        finish_reason=field(choice, "finish_reason"),
        budget=budget,
    )
