"""Waking parked sessions after their budget resets, without a thundering herd.

For every session whose reset time has passed (children before the parents waiting on
them) the resumer: takes the session's lock (so two resumers never run it twice), reads
`GET /v1/usage` (a budget still spent defers the session without counting an attempt),
builds the agent with the caller's factory, and continues the conversation. Sessions due
together are spread over a window that grows with their number.

Attempts: a resume that ends parked again *without getting anything done* adds one; one
that made progress starts the count afresh (long jobs are capped by the loop's max_steps,
not here). At `max_attempts`, or on an error waiting cannot fix, the session moves to the
failed list with its reason.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tollgate.agent.classify import classify_exception
from tollgate.agent.errors import BudgetExhausted, ErrorInfo, ErrorKind, QueueFull
from tollgate.agent.loop import Agent
from tollgate.agent.money import setting_nanos
from tollgate.agent.queue import ParkingQueue
from tollgate.agent.results import RESUMABLE, RunResult, StopReason
from tollgate.agent.session import Session
from tollgate.agent.timefmt import utc_from_epoch
from tollgate.agent.usage import UsageClient, UsageError

Factory = Callable[[Session], Any]


@dataclass(frozen=True)
class ResumeOutcome:
    """What one wake-up did: finished | reparked | failed | deferred | busy | skipped."""

    session_id: str
    action: str
    stop: str | None = None
    detail: str = ""


class Resumer:
    """Resume the sessions parked in `queue` through `factory(session) -> agent or callable`.

    The factory may return an `Agent`/`AsyncAgent` (its `resume` is called with this queue,
    so sub-agents park here too), any object with `resume(session)`, or a callable taking
    the session. A returned `RunResult` is read for its stop reason; any other return value
    counts as finished with that value as output.
    """

    def __init__(self, queue: ParkingQueue, factory: Factory, *, usage: UsageClient | None = None,
                 max_attempts: int = 5, spread_per_session: float = 1.0, max_spread: float = 300.0,
                 reset_margin: float = 1.0, poll_interval: float = 5.0, retry_backoff: float = 30.0,
                 min_remaining_usd: Decimal | str | int = 0, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None, logger: logging.Logger | None = None,
                 forgive_progress: bool = False) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.queue = queue
        self.factory = factory
        self.usage = usage
        self.max_attempts = max_attempts
        # Every re-park counts an attempt (so a session spans at most max_attempts windows). With
        # forgive_progress, a resume that got some work done starts the count afresh instead, for
        # long jobs meant to run across many windows (max_steps still bounds them).
        self.forgive_progress = forgive_progress
        self.spread_per_session = spread_per_session
        self.max_spread = max_spread
        self.reset_margin = reset_margin
        self.poll_interval = poll_interval
        self.retry_backoff = retry_backoff
        self.min_remaining_nanos = setting_nanos(min_remaining_usd, "min_remaining_usd") or 0
        self.clock = clock
        self.rng = rng or random.Random()
        self.log = logger or logging.getLogger("tollgate.agent.resume")

    # -- scheduling --------------------------------------------------------------------
    def wake_time(self, session: Session) -> float:
        return (session.reset_at.timestamp() if session.reset_at else 0.0) + self.reset_margin

    @staticmethod
    def blocked(parked: list[Session]) -> set[str]:
        """Sessions that must wait: parents of parked children, or waiting on a parked child."""
        ids = {s.session_id for s in parked}
        parents = {s.parent_id for s in parked if s.parent_id in ids}
        waiting = {s.session_id for s in parked if any(child in ids for child in s.waiting_on)}
        return {p for p in parents if p is not None} | waiting

    def due(self, now: float | None = None) -> list[Session]:
        """Parked sessions ready to wake now, oldest reset first; blocked parents excluded."""
        current = self.clock() if now is None else now
        parked = self.queue.parked()
        blocked = self.blocked(parked)
        return [s for s in parked if s.session_id not in blocked and self.wake_time(s) <= current]

    def jitter_offsets(self, count: int) -> list[float]:
        """Start offsets for `count` sessions due together: spread over count x spread_per_session."""
        spread = min(self.max_spread, self.spread_per_session * count)
        return sorted(self.rng.uniform(0.0, spread) for _ in range(count))

    # -- running -----------------------------------------------------------------------
    def run_once(self, stop: threading.Event | None = None) -> list[ResumeOutcome]:
        """Wake everything due now, including parents whose children finish meanwhile; then return."""
        outcomes: list[ResumeOutcome] = []
        tried: set[str] = set()
        while not (stop and stop.is_set()):
            ready = [s for s in self.due() if s.session_id not in tried]
            if not ready:
                break
            start = self.clock()
            for session, offset in zip(ready, self.jitter_offsets(len(ready)), strict=True):
                delay = start + offset - self.clock()
                if delay > 0 and self._wait(delay, stop):
                    return outcomes
                tried.add(session.session_id)
                outcomes.append(self.wake(session.session_id))
        return outcomes

    def run_forever(self, stop: threading.Event | None = None, *, exit_when_empty: bool = False,
                    timeout: float | None = None) -> bool:
        """The daemon loop. Returns True when the queue drained (with `exit_when_empty`) or
        `stop` was set, False when `timeout` seconds passed first."""
        deadline = None if timeout is None else self.clock() + timeout
        while not (stop and stop.is_set()):
            self.run_once(stop)
            parked = self.queue.parked()
            if exit_when_empty and not parked:
                return True
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            blocked = self.blocked(parked)
            upcoming = [self.wake_time(s) - now for s in parked if s.session_id not in blocked]
            pause = min([self.poll_interval, *upcoming])
            if deadline is not None:
                pause = min(pause, deadline - now)
            self._wait(max(pause, 0.01), stop)
        return True

    def _wait(self, seconds: float, stop: threading.Event | None) -> bool:
        """Sleep; True if `stop` was set meanwhile."""
        if stop is not None:
            return stop.wait(seconds)
        time.sleep(seconds)
        return False

    # -- one session -------------------------------------------------------------------
    def wake(self, session_id: str) -> ResumeOutcome:
        """Resume one session now if it is still parked, due, unblocked and affordable."""
        lock = self.queue.claim(session_id)
        if lock is None:
            return ResumeOutcome(session_id, "busy", detail="another process is resuming it")
        with lock:
            session = self.queue.get(session_id)
            now = self.clock()
            if session is None or self.wake_time(session) > now or session_id in self.blocked(self.queue.parked()):
                return ResumeOutcome(session_id, "skipped", detail="no longer due")
            deferred = self._check_budget(session, now)
            if deferred is not None:
                return deferred
            session = session.copy(resumes=session.resumes + 1)
            self.log.info("resuming session %r (step %d, attempt %d)", session_id, session.step, session.attempts + 1)
            try:
                result = self._call_factory(session)
            except Exception as exc:
                return self._after_exception(session, exc)
            return self._after_result(session, result)

    def _call_factory(self, session: Session) -> Any:
        target = self.factory(session.copy())
        if isinstance(target, Agent):
            outcome = target.resume(session.copy(), queue=self.queue)
        elif hasattr(target, "resume"):
            outcome = target.resume(session.copy())
        else:
            outcome = target(session.copy())
        return asyncio.run(_awaited(outcome)) if inspect.isawaitable(outcome) else outcome

    def _check_budget(self, session: Session, now: float) -> ResumeOutcome | None:
        if self.usage is None:
            return None
        try:
            status = self.usage.fetch()
        except UsageError as exc:
            if exc.info.kind in (ErrorKind.AUTH, ErrorKind.CREDITS):
                return self._fail(session, exc.info)
            if exc.info.status == 404:
                return None  # a gateway without /v1/usage: the resume's own call will tell
            return self._defer(session, utc_from_epoch(now + self.poll_interval), f"budget check failed: {exc}")
        if status.remaining_nanos is not None and status.remaining_nanos <= self.min_remaining_nanos \
                and status.is_current(now):
            when = status.resets_at or utc_from_epoch(now + self.poll_interval)
            return self._defer(session, when, "budget still spent")
        return None

    # -- outcomes ----------------------------------------------------------------------
    def _defer(self, session: Session, when: datetime, why: str) -> ResumeOutcome:
        try:
            self.queue.park(session.copy(reset_at=when, reset_source="usage"))
        except QueueFull as exc:
            return self._fail(session, ErrorInfo(kind=ErrorKind.BUDGET, message=str(exc)), reason="queue_full")
        self.log.info("session %r deferred to %s: %s", session.session_id, when.isoformat(), why)
        return ResumeOutcome(session.session_id, "deferred", detail=why)

    def _fail(self, session: Session, info: ErrorInfo, *, reason: str | None = None) -> ResumeOutcome:
        self.queue.fail(session, reason=reason or info.reason, message=info.message, kind=info.kind.value,
                        status=info.status)
        return ResumeOutcome(session.session_id, "failed", detail=reason or info.reason)

    def _repark(self, before: Session, after: Session, *, progressed: bool, reset_at: datetime | None,
                info: ErrorInfo | None, stop: str) -> ResumeOutcome:
        attempts = 0 if progressed and self.forgive_progress else before.attempts + 1
        if attempts >= self.max_attempts:
            why = info or ErrorInfo(kind=ErrorKind.UNKNOWN, message=stop)
            message = f"still {stop} after {attempts} resumes: {why.message}"
            gave_up = ErrorInfo(kind=why.kind, message=message, status=why.status)
            return self._fail(after, gave_up, reason="max_attempts")
        if reset_at is None:
            reset_at = utc_from_epoch(self.clock() + min(3600.0, self.retry_backoff * 2 ** max(0, attempts - 1)))
        try:
            self.queue.park(after.copy(attempts=attempts, resumes=before.resumes, reset_at=reset_at))
        except QueueFull as exc:  # its entry vanished meanwhile and the queue is full: keep it, as failed
            return self._fail(after, ErrorInfo(kind=ErrorKind.BUDGET, message=str(exc)), reason="queue_full")
        return ResumeOutcome(before.session_id, "reparked", stop=stop, detail=f"attempts={attempts}")

    def _after_result(self, session: Session, result: Any) -> ResumeOutcome:
        if not isinstance(result, RunResult):
            output = None if result is None else str(result)
            self.queue.finish(session, stop=StopReason.COMPLETED.value, output=output)
            return ResumeOutcome(session.session_id, "finished", stop=StopReason.COMPLETED.value)
        after = result.session
        if result.stop is StopReason.COMPLETED:
            self.queue.finish(after.copy(resumes=session.resumes), stop=result.stop.value, output=result.output)
            return ResumeOutcome(session.session_id, "finished", stop=result.stop.value)
        if result.stop in RESUMABLE:
            progressed = after.step > session.step or len(after.messages) > len(session.messages)
            reset = None if result.stop is StopReason.TOO_MANY_ERRORS else (result.reset_at or after.reset_at)
            return self._repark(session, after, progressed=progressed, reset_at=reset, info=result.error,
                                stop=result.stop.value)
        info = result.error or ErrorInfo(kind=ErrorKind.UNKNOWN, message=f"stopped: {result.stop.value}")
        reason = result.stop.value if result.stop is StopReason.MAX_STEPS else None
        outcome = self._fail(after.copy(resumes=session.resumes), info, reason=reason)
        return ResumeOutcome(session.session_id, "failed", stop=result.stop.value, detail=outcome.detail)

    def _after_exception(self, session: Session, exc: Exception) -> ResumeOutcome:
        info = classify_exception(exc)
        if info is not None and info.kind is ErrorKind.BUDGET:  # BudgetExhausted or a raw budget 429
            reset = exc.reset_at if isinstance(exc, BudgetExhausted) else info.reset_at
            return self._repark(session, session, progressed=False, reset_at=reset, info=info,
                                stop=StopReason.BUDGET_EXHAUSTED.value)
        if info is not None and not info.retriable:
            return self._fail(session, info)
        self.log.exception("resuming session %r raised", session.session_id)
        info = info or ErrorInfo(kind=ErrorKind.UNKNOWN, message=f"{type(exc).__name__}: {exc}")
        reset = None
        if info.kind is ErrorKind.RATE_LIMIT and info.retry_after is not None:
            reset = utc_from_epoch(self.clock()) + timedelta(seconds=info.retry_after)
        return self._repark(session, session, progressed=False, reset_at=reset, info=info, stop="error")


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
