"""What an agent run returns: why it stopped, what it spent, and its full session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from tollgate.agent.errors import ErrorInfo
from tollgate.agent.session import Session


class StopReason(str, Enum):
    """Why a run ended. Each one calls for a different action by the caller."""

    COMPLETED = "completed"  # the model answered without calling tools: `output` is the answer
    MAX_STEPS = "max_steps"  # the step cap was reached (over the session's whole life)
    TOO_MANY_ERRORS = "too_many_errors"  # consecutive transient errors hit the cap; try later
    PARKED = "parked"  # budget spent; the session is in the queue and will be resumed
    BUDGET_EXHAUSTED = "budget_exhausted"  # budget spent and no queue: retry after `reset_at`
    QUEUE_FULL = "queue_full"  # budget spent and the queue refused it: `session` holds the transcript
    CREDITS_EXHAUSTED = "credits_exhausted"  # prepaid credits are gone: top up, then resume
    AUTH_FAILED = "auth_failed"  # 401/403: invalid or revoked key, expired subscription
    CONTEXT_TOO_LONG = "context_too_long"  # compact the transcript before going on
    BAD_REQUEST = "bad_request"  # the server will never accept this request (unknown model...)


# Stops after which the same session can simply be run again later.
RESUMABLE = frozenset({StopReason.PARKED, StopReason.BUDGET_EXHAUSTED, StopReason.QUEUE_FULL,
                       StopReason.TOO_MANY_ERRORS})


@dataclass(frozen=True)
class StepRecord:
    """One successful model call: which model, the tokens, and what it cost."""

    step: int  # the session's step number (1-based over the session's life)
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_nanos: int | None  # from `x-request-cost`, else from the caller's price table
    remaining_nanos: int | None  # budget left after the call, from `x-budget-remaining`
    remaining_before_nanos: int | None = None  # what the loop knew when it chose the model
    tool_calls: tuple[str, ...] = ()
    finish_reason: str | None = None


@dataclass
class RunResult:
    """The outcome of `Agent.run` / `Agent.resume`."""

    stop: StopReason
    session: Session  # the session as it stands: full transcript, step, parent...
    output: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    error: ErrorInfo | None = None  # the error that ended the run, if one did
    reset_at: datetime | None = None  # when a budget stop can be retried

    @property
    def messages(self) -> list[dict]:
        return self.session.messages

    @property
    def cost_nanos(self) -> int:
        """Spend recorded during this run (steps whose cost is unknown count as 0)."""
        return sum(step.cost_nanos or 0 for step in self.steps)

    @property
    def made_progress(self) -> bool:
        return bool(self.steps)

    @property
    def resumable(self) -> bool:
        return self.stop in RESUMABLE
