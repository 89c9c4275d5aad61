"""The toolkit's exceptions and the facts it keeps about one failed call.

Classification itself lives in `classify.py`; this module only names the outcomes so
every other module (loop, queue, resumer, adapters) can share them without cycles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from tollgate.agent.timefmt import format_instant


class ErrorKind(str, Enum):
    """What a failed call means for the caller, which decides what to do next."""

    BUDGET = "budget"  # the key's budget window is spent: park until it resets
    RATE_LIMIT = "rate_limit"  # a per-minute limit: wait the short Retry-After, then retry
    CREDITS = "credits"  # prepaid credits are gone: waiting will not help, a top-up will
    AUTH = "auth"  # 401/403: invalid, revoked or expired key
    CONTEXT_TOO_LONG = "context_too_long"  # the transcript no longer fits the model
    BAD_REQUEST = "bad_request"  # any other request the server will never accept
    TRANSIENT = "transient"  # 5xx, timeouts, dropped connections: retry with backoff
    UNKNOWN = "unknown"


# Kinds that no amount of waiting fixes; a parked session with one of these is failed.
NON_RETRIABLE = frozenset({ErrorKind.CREDITS, ErrorKind.AUTH, ErrorKind.CONTEXT_TOO_LONG, ErrorKind.BAD_REQUEST})


@dataclass(frozen=True)
class ErrorInfo:
    """One classified failure: what the server said, and when it said trying again makes sense."""

    kind: ErrorKind
    message: str
    status: int | None = None
    code: str | None = None
    type: str | None = None
    retry_after: float | None = None  # seconds, as the server sent them
    reset_at: datetime | None = None  # when the budget window resets, if known
    reset_source: str | None = None  # "error_body" or "retry_after"
    should_retry: bool | None = None  # the `x-should-retry` header, when present

    @property
    def retriable(self) -> bool:
        """True when waiting (for a window, a minute or a backoff) can make the call succeed."""
        return self.kind not in NON_RETRIABLE and self.kind is not ErrorKind.UNKNOWN

    @property
    def reason(self) -> str:
        """A short machine-readable reason: the server's code when it gave one."""
        return self.code or self.type or (f"http_{self.status}" if self.status else self.kind.value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "message": self.message,
            "status": self.status,
            "code": self.code,
            "type": self.type,
            "retry_after": self.retry_after,
            "reset_at": format_instant(self.reset_at) if self.reset_at else None,
        }


class AgentError(Exception):
    """Base class of the toolkit's own exceptions."""


class BudgetExhausted(AgentError):
    """The key's budget window is spent. Carries the reset time instead of sleeping until it.

    `reset_at` is None only when neither the error body, `Retry-After` nor `/v1/usage`
    said when the window resets.
    """

    def __init__(self, info: ErrorInfo, *, reset_at: datetime | None = None) -> None:
        self.info = info
        self.reset_at = reset_at or info.reset_at
        self.retry_after = info.retry_after
        when = format_instant(self.reset_at) if self.reset_at else "an unknown time"
        super().__init__(f"budget exhausted until {when}: {info.message}")

    def seconds_until_reset(self, now: float | None = None) -> float | None:
        """Seconds from `now` (default: the wall clock) to the reset; never negative."""
        if self.reset_at is None:
            return None
        current = time.time() if now is None else now
        return max(0.0, self.reset_at.timestamp() - current)


class QueueFull(AgentError):
    """The parking queue is at capacity: this new session was NOT parked (nothing was evicted)."""

    def __init__(self, session_id: str, capacity: int, directory: str) -> None:
        self.session_id = session_id
        self.capacity = capacity
        self.directory = directory
        super().__init__(
            f"parking queue {directory} is full ({capacity} sessions); session {session_id!r} was not parked"
        )


class CorruptEntry(AgentError, ValueError):
    """A queue file that cannot be read back as a session; it is quarantined, never parsed twice."""


class SubAgentParked(AgentError):
    """A sub-agent ran out of budget and was parked; its parent must park and wait for it."""

    def __init__(self, child_id: str, reset_at: datetime | None) -> None:
        self.child_id = child_id
        self.reset_at = reset_at
        super().__init__(f"sub-agent {child_id!r} is parked until its budget resets")


class SubAgentFailed(AgentError):
    """A sub-agent stopped for good (failed list, auth, max steps...); the parent's tool sees this."""

    def __init__(self, child_id: str, reason: str) -> None:
        self.child_id = child_id
        self.reason = reason
        super().__init__(f"sub-agent {child_id!r} failed: {reason}")
