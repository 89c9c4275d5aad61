"""The budgeted agent: a tool-calling loop around any OpenAI-compatible chat client.

`Agent` drives a sync client (`openai.OpenAI`), `AsyncAgent` an async one (`openai.AsyncOpenAI`).
Both perform the operations `core.drive()` asks for, through one driver written as coroutines
(`Agent._drive`); only the I/O flavour differs (`runners.Blocking` / `runners.Awaiting`), so a
fix to calling the model or a tool lands in both at once. The rules live in `core`. The SDK's own
retries are switched off (`max_retries=0`) so that a budget 429 is never slept on: the loop
decides, and it parks instead of waiting hours.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tollgate.agent.classify import classify_exception
from tollgate.agent.core import CallTool, Chat, CheckUsage, Op, Park, Plan, Sleep, drive
from tollgate.agent.errors import BudgetExhausted, ErrorInfo, QueueFull, SubAgentParked
from tollgate.agent.policy import Downgrade, Limits
from tollgate.agent.queue import ParkingQueue
from tollgate.agent.results import RunResult
from tollgate.agent.runners import Awaiting, Blocking, IOFlavour, run_blocking
from tollgate.agent.session import Session
from tollgate.agent.tools import Tool, ToolContext, as_tool, format_result, parse_arguments, running_tool
from tollgate.agent.usage import UsageClient, UsageError, budget_from_headers
from tollgate.agent.wire import ChatReply, read_reply

_log = logging.getLogger("tollgate.agent.loop")
_ASYNC_CLIENT = "this client is async; use AsyncAgent"


class Agent:
    """A budgeted tool-calling loop over a sync OpenAI-compatible client.

    `run(task)` starts a session and `resume(session)` continues a parked one from its
    transcript. Both return a `RunResult` whose `stop` says what to do next. With a `queue`,
    a spent budget parks the session there (stop `PARKED`); without one the run stops with
    `BUDGET_EXHAUSTED` and the caller gets the session and its `reset_at`.
    """

    def __init__(self, client: Any, model: str, *, tools: Iterable[Tool | Callable[..., Any]] = (),
                 system: str | None = None, limits: Limits | None = None, downgrade: Downgrade | None = None,
                 queue: ParkingQueue | None = None, usage: Any = True,
                 prices: Mapping[str, tuple[int, int]] | None = None,
                 request_options: Mapping[str, Any] | None = None, sleep: Callable[[float], Any] | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        with_options = getattr(client, "with_options", None)
        self.client = with_options(max_retries=0) if callable(with_options) else client
        self.model = model
        self.tools = {t.name: t for t in map(as_tool, tools)}
        self.system = system
        self.limits = limits or Limits()
        self.downgrade = downgrade
        self.queue = queue
        self.usage = UsageClient.from_client(client) if usage is True else (usage or None)
        self.prices = dict(prices or {})
        self.request_options = dict(request_options or {})
        self._sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()

    # -- sessions ----------------------------------------------------------------------
    def new_session(self, task: str | list[dict[str, Any]], *, session_id: str | None = None,
                    parent_id: str | None = None, metadata: Mapping[str, Any] | None = None) -> Session:
        """A fresh session for `task` (a user message, or a whole message list)."""
        messages = [{"role": "user", "content": task}] if isinstance(task, str) else [dict(m) for m in task]
        if self.system and (not messages or messages[0].get("role") != "system"):
            messages.insert(0, {"role": "system", "content": self.system})
        return Session(session_id=session_id or f"s-{uuid.uuid4().hex}", model=self.model, messages=messages,
                       parent_id=parent_id, tool_names=sorted(self.tools), metadata=dict(metadata or {}))

    def _plan(self) -> Plan:
        return Plan(model=self.model, tools=self.tools, limits=self.limits, downgrade=self.downgrade,
                    prices=self.prices, clock=self.clock, rng=self.rng)

    def _prepare_resume(self, session: Session) -> Session:
        missing = set(session.tool_names) - set(self.tools)
        if missing:
            _log.warning("resuming %r without tools it had: %s", session.session_id, ", ".join(sorted(missing)))
        return session.copy(tool_names=sorted(self.tools))

    # -- public API --------------------------------------------------------------------
    def run(self, task: str | list[dict[str, Any]], *, session_id: str | None = None, parent_id: str | None = None,
            metadata: Mapping[str, Any] | None = None) -> RunResult:
        """Start a new session and run it until it completes, parks or must stop."""
        session = self.new_session(task, session_id=session_id, parent_id=parent_id, metadata=metadata)
        return self.execute(session, queue=self.queue)

    def resume(self, session: Session, *, queue: ParkingQueue | None = None) -> RunResult:
        """Continue a parked session from its full transcript (`queue` overrides the agent's)."""
        return self.execute(self._prepare_resume(session), queue=queue or self.queue)

    def execute(self, session: Session, *, queue: ParkingQueue | None) -> RunResult:
        """Drive `session` (mutated in place) with this agent's client; parks into `queue`."""
        return run_blocking(self._drive(session, queue, Blocking(self._sleep)))

    # -- the driver, shared by Agent and AsyncAgent ---------------------------------------
    # Written once as coroutines; the I/O flavour (runners.Blocking or runners.Awaiting)
    # decides whether an await really waits. `core.drive()` makes every decision.
    async def _drive(self, session: Session, queue: ParkingQueue | None, io: IOFlavour) -> RunResult:
        gen = drive(session, self._plan())
        answer: Any = None
        while True:
            try:
                op = gen.send(answer)
            except StopIteration as done:
                return done.value
            answer = await self._perform(op, queue, io)

    async def _perform(self, op: Op, queue: ParkingQueue | None, io: IOFlavour) -> Any:
        if isinstance(op, Chat):
            return await self._chat(op, io)
        if isinstance(op, CheckUsage):
            return await io.blocking(_read_usage, self.usage.fetch) if self.usage is not None else None
        if isinstance(op, CallTool):
            return await self._call_tool(op, queue, io)
        if isinstance(op, Sleep):
            await io.sleep(op.seconds)
            return None
        if isinstance(op, Park):
            return await io.blocking(_park, queue, op.session)
        raise TypeError(f"unknown operation {op!r}")

    def _chat_kwargs(self, op: Chat) -> dict[str, Any]:
        kwargs = {**self.request_options, "model": op.model, "messages": op.messages}
        if op.tools:
            kwargs["tools"] = op.tools
        return kwargs

    async def _chat(self, op: Chat, io: IOFlavour) -> ChatReply | ErrorInfo:
        completions = self.client.chat.completions
        raw_api = getattr(completions, "with_raw_response", None)
        try:
            if raw_api is not None:  # the raw response carries the budget headers
                raw = await io.result(raw_api.create(**self._chat_kwargs(op)), _ASYNC_CLIENT)
                parsed = await io.result(raw.parse(), _ASYNC_CLIENT)
                return read_reply(parsed, budget_from_headers(raw.headers, self.clock()))
            response = await io.result(completions.create(**self._chat_kwargs(op)), _ASYNC_CLIENT)
            return read_reply(response, None)
        except Exception as exc:
            return _classified_or_raise(exc, self.clock())

    async def _call_tool(self, op: CallTool, queue: ParkingQueue | None, io: IOFlavour) -> Any:
        context = ToolContext(session_id=op.session_id, tool_call_id=str(op.call.get("id")), queue=queue)
        try:
            arguments = parse_arguments((op.call.get("function") or {}).get("arguments"))
            with running_tool(context):  # an async tool runs when awaited: keep the context set till then
                value = await io.result(op.tool.fn(**arguments),
                                        f"tool {op.tool.name!r} is async; run it with AsyncAgent")
            return format_result(value)
        except (SubAgentParked, BudgetExhausted) as exc:
            return exc
        except Exception as exc:  # the model sees the failure and can recover from it
            _log.info("tool %s failed: %s", op.tool.name, exc)
            return f"error: {type(exc).__name__}: {exc}"


class AsyncAgent(Agent):
    """`Agent` for an async client (`openai.AsyncOpenAI`); `run` and `resume` are coroutines.

    Tools may be plain functions or `async def` functions. The driver is `Agent`'s own,
    run with awaiting I/O: both agents stop, retry and park by the same code.
    """

    async def run(self, task: str | list[dict[str, Any]], *, session_id: str | None = None,  # type: ignore[override]
                  parent_id: str | None = None, metadata: Mapping[str, Any] | None = None) -> RunResult:
        session = self.new_session(task, session_id=session_id, parent_id=parent_id, metadata=metadata)
        return await self.execute(session, queue=self.queue)

    async def resume(self, session: Session, *, queue: ParkingQueue | None = None) -> RunResult:  # type: ignore[override]
        return await self.execute(self._prepare_resume(session), queue=queue or self.queue)

    async def execute(self, session: Session, *, queue: ParkingQueue | None) -> RunResult:  # type: ignore[override]
        return await self._drive(session, queue, Awaiting(self._sleep))


def _classified_or_raise(exc: Exception, now: float) -> ErrorInfo:
    info = classify_exception(exc, now=now)
    if info is None:
        raise exc
    _log.info("model call failed: %s (%s)", info.reason, info.message)
    return info


def _read_usage(fetch: Callable[[], Any]) -> Any:
    try:
        return fetch()
    except UsageError as exc:
        _log.info("budget check failed: %s", exc)
        return exc.info


def _park(queue: ParkingQueue | None, session: Session) -> Session | QueueFull | None:
    if queue is None:
        return None
    try:
        return queue.park(session)
    except QueueFull as exc:
        return exc
