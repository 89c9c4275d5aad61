"""The resumer's decisions: when to wake, in what order, and where each outcome goes."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx2
import openai
import pytest
from tollgate.agent import (
    BudgetExhausted,
    BudgetStatus,
    ErrorKind,
    ParkingQueue,
    Resumer,
    RunResult,
    Session,
    StopReason,
    UsageError,
)
from tollgate.agent.errors import ErrorInfo

NOW = datetime(2026, 11, 29, 15, 0, 5, tzinfo=timezone.utc).timestamp()
PAST = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)
FUTURE = datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc)


def parked(queue: ParkingQueue, session_id: str, *, reset=PAST, parent=None, waiting=(), attempts=0) -> Session:
    session = Session(session_id=session_id, model="m", messages=[{"role": "user", "content": session_id}],
                      parent_id=parent, waiting_on=list(waiting), reset_at=reset, attempts=attempts, step=1)
    return queue.park(session)


class Usage:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.count = 0

    def fetch(self) -> BudgetStatus:
        self.count += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def resumer(queue: ParkingQueue, factory, **options: Any) -> Resumer:
    options.setdefault("spread_per_session", 0.0)
    options.setdefault("reset_margin", 1.0)
    return Resumer(queue, factory, clock=lambda: NOW, **options)


def finishing(output: str = "done"):
    def factory(session: Session):
        def run(s: Session) -> RunResult:
            s.messages.append({"role": "assistant", "content": output})
            s.step += 1
            return RunResult(stop=StopReason.COMPLETED, session=s, output=output)
        return run
    return factory


def reparking(progress: bool, reset=FUTURE, stop=StopReason.PARKED, error=None):
    def factory(session: Session):
        def run(s: Session) -> RunResult:
            if progress:
                s.step += 1
                s.messages.append({"role": "assistant", "content": "more"})
            s.reset_at = reset
            return RunResult(stop=stop, session=s, reset_at=reset, error=error)
        return run
    return factory


def test_jitter_spreads_due_sessions_over_a_window_that_grows_with_their_number():
    r = Resumer(ParkingQueue.__new__(ParkingQueue), finishing(), spread_per_session=2.0, max_spread=300.0,
                rng=random.Random(7))
    one = r.jitter_offsets(1)
    many = r.jitter_offsets(100)
    assert 0 <= one[0] <= 2.0
    assert many == sorted(many) and all(0 <= x <= 200.0 for x in many)
    assert many[-1] - many[0] > 150.0  # actually spread, not bunched
    assert len({round(x, 6) for x in many}) == 100
    capped = r.jitter_offsets(1000)
    assert max(capped) <= 300.0


def test_due_skips_future_sessions_and_parents_of_parked_children(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "ready")
    parked(queue, "later", reset=FUTURE)
    parked(queue, "parent")
    parked(queue, "parent.c1", parent="parent")
    parked(queue, "waiter", waiting=["parent.c1"])
    assert [s.session_id for s in resumer(queue, finishing()).due()] == ["parent.c1", "ready"]


def test_a_finished_session_moves_to_done(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s")
    outcome = resumer(queue, finishing("42")).wake("s")
    assert (outcome.action, outcome.stop) == ("finished", "completed")
    done = queue.finished("s")
    assert done.output == "42" and done.session.resumes == 1 and done.session.messages[-1]["content"] == "42"
    assert queue.get("s") is None


def test_a_resume_that_gets_nothing_done_counts_an_attempt_and_fails_at_the_maximum(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s", attempts=1)
    outcome = resumer(queue, reparking(progress=False), max_attempts=3).wake("s")
    assert outcome.action == "reparked" and queue.get("s").attempts == 2 and queue.get("s").reset_at == FUTURE
    queue.park(queue.get("s").copy(reset_at=PAST))
    outcome = resumer(queue, reparking(progress=False), max_attempts=3).wake("s")
    assert outcome.action == "failed" and queue.get("s") is None
    failure = queue.failure("s")
    assert failure.reason == "max_attempts" and "3 resumes" in failure.message


def test_every_repark_counts_an_attempt_even_with_progress(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s", attempts=3)
    assert resumer(queue, reparking(progress=True), max_attempts=5).wake("s").action == "reparked"
    assert queue.get("s").attempts == 4
    other = ParkingQueue(tmp_path / "other")
    parked(other, "t", attempts=4)
    assert resumer(other, reparking(progress=True), max_attempts=5).wake("t").action == "failed"
    assert other.failure("t").reason == "max_attempts"


def test_with_forgive_progress_a_resume_that_got_work_done_starts_the_count_afresh(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s", attempts=4)
    outcome = resumer(queue, reparking(progress=True), max_attempts=5, forgive_progress=True).wake("s")
    assert outcome.action == "reparked"
    again = queue.get("s")
    assert again.attempts == 0 and again.step == 2 and again.resumes == 1


def test_a_spent_budget_defers_without_counting_or_calling_the_factory(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s", attempts=2)
    usage = Usage(BudgetStatus(limit_nanos=10, remaining_nanos=0, resets_at=FUTURE))
    outcome = resumer(queue, lambda s: pytest.fail("must not run"), usage=usage).wake("s")
    assert outcome.action == "deferred"
    assert queue.get("s").reset_at == FUTURE and queue.get("s").attempts == 2


def test_a_refused_key_fails_the_session_before_anything_is_sent(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s")
    refused = UsageError(ErrorInfo(kind=ErrorKind.AUTH, message="revoked", status=403, code="key_revoked"))
    outcome = resumer(queue, lambda s: pytest.fail("must not run"), usage=Usage(refused)).wake("s")
    assert outcome.action == "failed" and queue.failure("s").reason == "key_revoked"


def test_a_missing_usage_endpoint_does_not_block_and_a_flaky_one_defers(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "a")
    parked(queue, "b")
    missing = UsageError(ErrorInfo(kind=ErrorKind.BAD_REQUEST, message="no route", status=404))
    assert resumer(queue, finishing(), usage=Usage(missing)).wake("a").action == "finished"
    flaky = UsageError(ErrorInfo(kind=ErrorKind.TRANSIENT, message="502", status=502))
    outcome = resumer(queue, finishing(), usage=Usage(flaky), poll_interval=5.0).wake("b")
    assert outcome.action == "deferred" and queue.get("b").reset_at.timestamp() == NOW + 5.0


@pytest.mark.parametrize(
    ("stop", "kind", "reason"),
    [
        (StopReason.AUTH_FAILED, ErrorKind.AUTH, "key_revoked"),
        (StopReason.CREDITS_EXHAUSTED, ErrorKind.CREDITS, "insufficient_credits"),
        (StopReason.CONTEXT_TOO_LONG, ErrorKind.CONTEXT_TOO_LONG, "context_length_exceeded"),
        (StopReason.MAX_STEPS, None, "max_steps"),
    ],
)
def test_stops_that_waiting_cannot_fix_go_to_the_failed_list(tmp_path, stop, kind, reason):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s")
    error = ErrorInfo(kind=kind, message="no", code=reason) if kind else None

    def factory(session):
        return lambda s: RunResult(stop=stop, session=s, error=error)

    outcome = resumer(queue, factory).wake("s")
    assert outcome.action == "failed" and outcome.stop == stop.value
    assert queue.failure("s").reason == reason and queue.get("s") is None


def test_transient_failures_back_off_and_count(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s")
    factory = reparking(progress=False, reset=None, stop=StopReason.TOO_MANY_ERRORS,
                        error=ErrorInfo(kind=ErrorKind.TRANSIENT, message="502"))
    assert resumer(queue, factory, retry_backoff=30.0).wake("s").action == "reparked"
    again = queue.get("s")
    assert again.attempts == 1 and again.reset_at.timestamp() == NOW + 30.0


def _api_error(status: int, code: str, **extra: str) -> openai.APIStatusError:
    body = {"error": {"message": code, "type": code, "code": code, **extra}}
    request = httpx2.Request("POST", "http://gw/v1/chat/completions")
    response = httpx2.Response(status, content=json.dumps(body).encode(), request=request)
    return openai.OpenAI(base_url="http://gw/v1", api_key="k")._make_status_error("e", body=body, response=response)


def test_exceptions_from_the_factory_are_recorded_never_raised(tmp_path):
    queue = ParkingQueue(tmp_path)
    for name in ("budget", "raw-429", "forbidden", "bug"):
        parked(queue, name)

    def factory(session):
        if session.session_id == "budget":
            raise BudgetExhausted(ErrorInfo(kind=ErrorKind.BUDGET, message="spent", reset_at=FUTURE))
        if session.session_id == "raw-429":  # a framework that lets the SDK's error through
            raise _api_error(429, "budget_exceeded", reset_at="2026-11-29T20:00:00Z")
        if session.session_id == "forbidden":
            raise _api_error(403, "subscription_expired")
        raise RuntimeError("typo in the factory")

    r = resumer(queue, factory, max_attempts=2)
    assert r.wake("budget").action == "reparked" and queue.get("budget").reset_at == FUTURE
    assert r.wake("raw-429").action == "reparked" and queue.get("raw-429").reset_at == FUTURE
    assert queue.get("raw-429").attempts == 1
    assert r.wake("forbidden").action == "failed" and queue.failure("forbidden").reason == "subscription_expired"
    assert r.wake("bug").action == "reparked" and queue.get("bug").attempts == 1
    queue.park(queue.get("bug").copy(reset_at=PAST))
    assert r.wake("bug").action == "failed" and "RuntimeError" in queue.failure("bug").message


def test_factories_may_return_agents_objects_callables_or_coroutines(tmp_path):
    queue = ParkingQueue(tmp_path)
    for name in ("callable", "object", "coroutine"):
        parked(queue, name)

    class Resumable:
        def resume(self, session):
            return "via resume()"

    async def later(session):
        return RunResult(stop=StopReason.COMPLETED, session=session, output="awaited")

    def factory(session):
        return {"callable": lambda s: "via call", "object": Resumable(), "coroutine": later}[session.session_id]

    r = resumer(queue, factory)
    for name in ("callable", "object", "coroutine"):
        assert r.wake(name).action == "finished"
    assert [queue.finished(n).output for n in ("callable", "object", "coroutine")] == \
        ["via call", "via resume()", "awaited"]


def test_a_session_claimed_elsewhere_is_left_alone(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "s")
    lock = queue.claim("s")
    try:
        assert resumer(queue, lambda s: pytest.fail("must not run")).wake("s").action == "busy"
    finally:
        lock.release()


def test_one_pass_resumes_children_first_then_the_parents_they_unblock(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "p", waiting=["p.c1"])
    parked(queue, "p.c1", parent="p")
    parked(queue, "p.c1.g", parent="p.c1")
    order: list[str] = []

    def factory(session):
        order.append(session.session_id)
        return lambda s: f"result of {s.session_id}"

    outcomes = resumer(queue, factory).run_once()
    assert order == ["p.c1.g", "p.c1", "p"]
    assert [o.action for o in outcomes] == ["finished"] * 3
    assert queue.parked() == []


def test_run_forever_drains_the_queue_and_honours_its_timeout(tmp_path):
    queue = ParkingQueue(tmp_path)
    parked(queue, "now", reset=datetime.now(timezone.utc) - timedelta(seconds=1))
    r = Resumer(queue, finishing(), spread_per_session=0.0, reset_margin=0.0, poll_interval=0.01)
    assert r.run_forever(exit_when_empty=True, timeout=30) is True
    assert queue.finished("now") is not None
    parked(queue, "far", reset=datetime.now(timezone.utc) + timedelta(hours=1))
    assert r.run_forever(exit_when_empty=True, timeout=0.05) is False
    assert queue.get("far") is not None


def test_a_session_that_cannot_be_parked_again_is_failed_not_dropped(tmp_path):
    queue = ParkingQueue(tmp_path, max_entries=1)
    parked(queue, "s")

    def factory(session):
        def run(s: Session) -> RunResult:
            queue.remove("s")  # someone removed the entry meanwhile...
            parked(queue, "other")  # ...and another session took the last place
            s.reset_at = FUTURE
            return RunResult(stop=StopReason.BUDGET_EXHAUSTED, session=s, reset_at=FUTURE)
        return run

    outcome = resumer(queue, factory).wake("s")
    assert outcome.action == "failed" and queue.failure("s").reason == "queue_full"
    assert queue.failure("s").session.messages
