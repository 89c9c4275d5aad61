"""A conversation's resumable state, and its JSON form on disk.

A session holds everything needed to continue an agent from another process hours later:
its full transcript, the step it reached, who its parent is, and when its budget resets.
Reading is strict: a file that does not match the format exactly raises `CorruptEntry`
(and is quarantined by the queue) rather than resuming an agent from half a transcript.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tollgate.agent.errors import CorruptEntry
from tollgate.agent.timefmt import format_instant, parse_instant

FORMAT = "tollgate.agent.session/1"
MAX_ID_LENGTH = 200


@dataclass
class Session:
    """One agent conversation. `messages` is the OpenAI chat transcript, system prompt included."""

    session_id: str
    model: str
    messages: list[dict[str, Any]]
    parent_id: str | None = None
    tool_names: list[str] = field(default_factory=list)
    step: int = 0  # model calls that succeeded, over the whole life of the session
    attempts: int = 0  # resumes in a row that got no step done (the retry counter)
    resumes: int = 0  # resumes tried in total
    reset_at: datetime | None = None  # when the budget that stopped it resets
    reset_source: str | None = None  # error_body | retry_after | usage | fallback | backoff
    parked_at: datetime | None = None
    reason: str | None = None  # the server's error code, e.g. budget_exceeded
    message: str | None = None  # the server's error message
    waiting_on: list[str] = field(default_factory=list)  # parked sub-agents this one needs
    metadata: dict[str, Any] = field(default_factory=dict)  # caller's own JSON data
    cost_nanos: int = 0  # spend recorded for this session, all runs
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def copy(self, **changes: Any) -> Session:
        """A deep copy (transcripts are mutable lists), with some fields changed."""
        return replace(copy.deepcopy(self), **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "session_id": self.session_id,
            "parent_id": self.parent_id,
            "model": self.model,
            "messages": self.messages,
            "tool_names": self.tool_names,
            "step": self.step,
            "attempts": self.attempts,
            "resumes": self.resumes,
            "reset_at": format_instant(self.reset_at) if self.reset_at else None,
            "reset_source": self.reset_source,
            "parked_at": format_instant(self.parked_at) if self.parked_at else None,
            "reason": self.reason,
            "message": self.message,
            "waiting_on": self.waiting_on,
            "metadata": self.metadata,
            "cost_nanos": self.cost_nanos,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        """Validate and build; raises `CorruptEntry` naming the first thing that is wrong."""
        if not isinstance(data, dict):
            raise CorruptEntry("entry is not a JSON object")
        if data.get("format") != FORMAT:
            raise CorruptEntry(f"unknown format {data.get('format')!r}")
        return cls(
            session_id=_session_id(data.get("session_id"), "session_id"),
            parent_id=None if data.get("parent_id") is None else _session_id(data["parent_id"], "parent_id"),
            model=_string(data.get("model"), "model"),
            messages=_messages(data.get("messages")),
            tool_names=_strings(data.get("tool_names", []), "tool_names"),
            step=_count(data.get("step", 0), "step"),
            attempts=_count(data.get("attempts", 0), "attempts"),
            resumes=_count(data.get("resumes", 0), "resumes"),
            reset_at=_instant(data.get("reset_at"), "reset_at"),
            reset_source=_optional_string(data.get("reset_source"), "reset_source"),
            parked_at=_instant(data.get("parked_at"), "parked_at"),
            reason=_optional_string(data.get("reason"), "reason"),
            message=_optional_string(data.get("message"), "message"),
            waiting_on=_strings(data.get("waiting_on", []), "waiting_on"),
            metadata=_mapping(data.get("metadata", {}), "metadata"),
            cost_nanos=_count(data.get("cost_nanos", 0), "cost_nanos"),
            prompt_tokens=_count(data.get("prompt_tokens", 0), "prompt_tokens"),
            completion_tokens=_count(data.get("completion_tokens", 0), "completion_tokens"),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Session:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise CorruptEntry(f"not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise CorruptEntry(f"{name} must be a non-empty string")
    return value


def _optional_string(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise CorruptEntry(f"{name} must be a string or null")
    return value


def _session_id(value: Any, name: str) -> str:
    text = _string(value, name)
    if len(text) > MAX_ID_LENGTH or any(ord(ch) < 32 for ch in text):
        raise CorruptEntry(f"{name} must be at most {MAX_ID_LENGTH} printable characters")
    return text


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CorruptEntry(f"{name} must be a non-negative integer")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CorruptEntry(f"{name} must be a list of strings")
    return list(value)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CorruptEntry(f"{name} must be an object")
    return value


def _instant(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    moment = parse_instant(value)
    if moment is None:
        raise CorruptEntry(f"{name} must be an ISO-8601 timestamp or null")
    return moment


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise CorruptEntry("messages must be a non-empty list")
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise CorruptEntry(f"messages[{index}] must be an object with a role")
    return value
