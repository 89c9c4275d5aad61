"""The budgeted loop's decisions, free of I/O, shared by the sync and async agents.

`drive()` is a generator: it yields an operation (call the model, read the budget, run a
tool, sleep, park) and is sent the result. `loop.Agent` performs operations with a sync
client, `loop.AsyncAgent` with an async one; both therefore stop, downgrade, back off and
park by exactly the same rules.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from tollgate.agent.errors import NON_RETRIABLE, BudgetExhausted, ErrorInfo, ErrorKind, QueueFull, SubAgentParked
from tollgate.agent.money import request_cost
from tollgate.agent.policy import Downgrade, Limits
from tollgate.agent.results import RunResult, StepRecord, StopReason
from tollgate.agent.session import Session
from tollgate.agent.timefmt import utc_from_epoch
from tollgate.agent.tools import Tool, unanswered_tool_calls
from tollgate.agent.usage import BudgetStatus
from tollgate.agent.wire import ChatReply


@dataclass(frozen=True)
class Chat:
    """Call the model. Answer: `ChatReply`, or `ErrorInfo` for an API or network error."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]


@dataclass(frozen=True)
class CheckUsage:
    """Read GET /v1/usage. Answer: `BudgetStatus`, `ErrorInfo`, or None with no usage source."""


@dataclass(frozen=True)
class CallTool:
    """Run a tool. Answer: its text, or a `SubAgentParked` / `BudgetExhausted` it raised."""

    tool: Tool
    call: dict[str, Any]
    session_id: str


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Park:
    """Park the session. Answer: the stored `Session`, a `QueueFull`, or None with no queue."""

    session: Session


Op = Chat | CheckUsage | CallTool | Sleep | Park

_STOP_FOR_KIND = {
    ErrorKind.CREDITS: StopReason.CREDITS_EXHAUSTED,
    ErrorKind.AUTH: StopReason.AUTH_FAILED,
    ErrorKind.CONTEXT_TOO_LONG: StopReason.CONTEXT_TOO_LONG,
    ErrorKind.BAD_REQUEST: StopReason.BAD_REQUEST,
}


@dataclass(frozen=True)
class Plan:
    """Everything `drive()` needs to know about the agent, fixed for one run."""

    model: str
    tools: Mapping[str, Tool]
    limits: Limits
    downgrade: Downgrade | None
    prices: Mapping[str, tuple[int, int]]  # model -> (input, output) nano-dollars per million tokens
    clock: Callable[[], float]
    rng: random.Random


def drive(session: Session, plan: Plan) -> Generator[Op, Any, RunResult]:
    """Run `session` forward until it completes, parks, or must stop. Mutates `session`."""
    run = _Run(session, plan)
    return run.loop()


class _Run:
    def __init__(self, session: Session, plan: Plan) -> None:
        self.s = session
        self.p = plan
        self.steps: list[StepRecord] = []
        self.budget: BudgetStatus | None = None
        self.errors_in_row = 0
        self.schemas = [tool.schema() for tool in plan.tools.values()]

    def result(self, stop: StopReason, *, output: str | None = None, error: ErrorInfo | None = None,
               session: Session | None = None) -> RunResult:
        return RunResult(stop=stop, session=session or self.s, output=output, steps=self.steps, error=error,
                         reset_at=(session or self.s).reset_at if stop in (
                             StopReason.PARKED, StopReason.BUDGET_EXHAUSTED, StopReason.QUEUE_FULL) else None)

    def loop(self) -> Generator[Op, Any, RunResult]:
        limits = self.p.limits
        since_check: int | None = None  # None: read the budget before the first call
        while True:
            pending = unanswered_tool_calls(self.s.messages)
            if pending:
                parked = yield from self.run_tools(pending)
                if parked is not None:
                    return parked
                continue
            if self.s.step >= limits.max_steps:
                return self.result(StopReason.MAX_STEPS)
            if limits.usage_check_every and (since_check is None or since_check >= limits.usage_check_every):
                since_check = 0
                stop = yield from self.check_budget()
                if stop is not None:
                    return stop
            now = self.p.clock()
            model, before = self.choose_model(now), self.known_remaining(now)
            reply = yield Chat(model, self.s.messages, self.schemas)
            if isinstance(reply, ErrorInfo):
                stop = yield from self.on_error(reply)
                if stop is not None:
                    return stop
                continue
            self.errors_in_row = 0
            since_check = (since_check or 0) + 1
            self.record(model, reply, before)
            if not reply.tool_calls:
                return self.result(StopReason.COMPLETED, output=reply.content or "")

    def choose_model(self, now: float) -> str:
        down = self.p.downgrade
        if down is not None and down.applies(self.budget, now):
            return down.model
        return self.p.model

    def known_remaining(self, now: float) -> int | None:
        budget = self.budget
        if budget is None or not budget.is_current(now):
            return None
        return budget.remaining_nanos

    def check_budget(self) -> Generator[Op, Any, RunResult | None]:
        status = yield CheckUsage()
        if isinstance(status, ErrorInfo):
            # Only a refused key stops here; a missing or failing usage endpoint must not.
            return self.result(StopReason.AUTH_FAILED, error=status) if status.kind is ErrorKind.AUTH else None
        if status is None:
            return None
        self.budget = status
        floor = self.p.limits.min_remaining_nanos
        if status.remaining_nanos is not None and status.remaining_nanos <= floor and status.is_current(self.p.clock()):
            info = ErrorInfo(kind=ErrorKind.BUDGET, code="budget_low", reset_at=status.resets_at,
                             reset_source="usage" if status.resets_at else None,
                             message=f"remaining budget {status.remaining_nanos} nano-USD is at or below the floor")
            return (yield from self.park(info))
        return None

    def on_error(self, info: ErrorInfo) -> Generator[Op, Any, RunResult | None]:
        limits = self.p.limits
        if info.kind is ErrorKind.BUDGET:
            return (yield from self.park(info))
        if info.kind in NON_RETRIABLE:
            return self.result(_STOP_FOR_KIND[info.kind], error=info)
        wait = info.retry_after if info.kind is ErrorKind.RATE_LIMIT and info.retry_after is not None else None
        if wait is not None and wait > limits.max_wait_seconds:
            reset = utc_from_epoch(self.p.clock()) + timedelta(seconds=wait)
            return (yield from self.park(replace(info, reset_at=reset, reset_source="retry_after")))
        self.errors_in_row += 1
        if self.errors_in_row >= limits.max_consecutive_errors:
            return self.result(StopReason.TOO_MANY_ERRORS, error=info)
        if wait is None:
            ceiling = min(limits.backoff_max, limits.backoff_initial * 2 ** (self.errors_in_row - 1))
            wait = ceiling * (1 - 0.25 * self.p.rng.random())
        yield Sleep(wait)
        return None

    def record(self, model: str, reply: ChatReply, before: int | None) -> None:
        s = self.s
        s.step += 1
        s.messages.append(reply.message)
        s.prompt_tokens += reply.prompt_tokens or 0
        s.completion_tokens += reply.completion_tokens or 0
        cost = reply.budget.cost_nanos if reply.budget else None
        if cost is None and model in self.p.prices and reply.prompt_tokens is not None:
            price_in, price_out = self.p.prices[model]
            cost = request_cost(reply.prompt_tokens, reply.completion_tokens or 0, price_in, price_out)
        s.cost_nanos += cost or 0
        if reply.budget is not None and reply.budget.remaining_nanos is not None:
            self.budget = reply.budget
        self.steps.append(StepRecord(
            step=s.step, model=model, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
            cost_nanos=cost, remaining_nanos=reply.budget.remaining_nanos if reply.budget else None,
            tool_calls=tuple(c["function"]["name"] for c in reply.tool_calls), finish_reason=reply.finish_reason,
            remaining_before_nanos=before,
        ))

    def run_tools(self, pending: list[dict[str, Any]]) -> Generator[Op, Any, RunResult | None]:
        for call in pending:
            name = (call.get("function") or {}).get("name")
            tool = self.p.tools.get(name) if isinstance(name, str) else None
            if tool is None:
                content: Any = f"error: unknown tool {name!r}"
            else:
                content = yield CallTool(tool, call, self.s.session_id)
            if isinstance(content, SubAgentParked):
                self.s.waiting_on = [content.child_id]
                info = ErrorInfo(kind=ErrorKind.BUDGET, code="subagent_parked", reset_at=content.reset_at,
                                 reset_source="subagent", message=str(content))
                return (yield from self.park(info))
            if isinstance(content, BudgetExhausted):
                return (yield from self.park(replace(content.info, reset_at=content.reset_at)))
            self.s.messages.append({"role": "tool", "tool_call_id": call.get("id"), "content": content})
        self.s.waiting_on = []
        return None

    def park(self, info: ErrorInfo) -> Generator[Op, Any, RunResult]:
        reset_at, source = info.reset_at, info.reset_source
        if reset_at is None:
            status = yield CheckUsage()
            if isinstance(status, BudgetStatus) and status.resets_at is not None:
                reset_at, source = status.resets_at, "usage"
        if reset_at is None:
            reset_at = utc_from_epoch(self.p.clock()) + timedelta(seconds=self.p.limits.unknown_reset_seconds)
            source = "fallback"
        snapshot = self.s.copy(reset_at=reset_at, reset_source=source, reason=info.reason, message=info.message)
        self.s.reset_at, self.s.reset_source = reset_at, source
        stored = yield Park(snapshot)
        if stored is None:
            return self.result(StopReason.BUDGET_EXHAUSTED, error=info, session=snapshot)
        if isinstance(stored, QueueFull):
            return self.result(StopReason.QUEUE_FULL, error=info, session=snapshot)
        return self.result(StopReason.PARKED, error=info, session=stored)
