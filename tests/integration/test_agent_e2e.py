"""E2E (gateway): park-and-resume against a gateway process over real HTTP.

Runs against `tests/fakes/budget_gateway.py` until `tests/conftest.py` provides the
`tollgate_agent_*` fixtures (see `agent_fixtures.py`); then the same tests run against the
real tollgate gateway. They read costs and reset times from the wire, never assume them.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from tollgate.agent import (
    AsyncAgent,
    BudgetExhausted,
    Downgrade,
    ErrorKind,
    Limits,
    ParkingQueue,
    StopReason,
    UsageClient,
    guard,
    run_subagent,
)

from tests.integration.agent_fixtures import (  # noqa: F401 (fixtures)
    CONTEXT,
    ROOT,
    agent_budget_key,
    agent_models,
    agent_queue,
    agent_revoked_key,
    child_env,
    expected_answer,
    fake_budget_gateway,
    make_agent,
    make_resumer,
    script,
    tick,
)

EXAMPLE = ROOT / "examples" / "agent_park_and_resume.py"
CLI = [sys.executable, "-m", "tollgate.cli.agent"]
TIMEOUT = 60.0  # generous upper bound on waiting for resets; the tests finish in a few windows


def _roles(messages: list[dict]) -> list[str]:
    return [m["role"] for m in messages]


def _tool_contents(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "tool"]


def test_agent_parks_on_budget_429_and_resumer_finishes_with_whole_transcript(
        agent_budget_key, agent_models, agent_queue):
    base_url, key = agent_budget_key
    model, _ = agent_models
    ticks = 5
    first = make_agent(base_url, key, model, queue=agent_queue).run(script(*["tick"] * ticks), session_id="e2e-1")

    assert first.stop is StopReason.PARKED
    assert first.error is not None and first.error.kind is ErrorKind.BUDGET
    parked = agent_queue.get("e2e-1")
    assert parked is not None and parked.reset_at is not None
    assert parked.messages == first.session.messages
    assert parked.step == len(first.steps) < ticks + 1

    woken: list[int] = []

    def factory(session):
        woken.append(len(session.messages))
        return make_agent(base_url, key, model, queue=None)

    assert make_resumer(agent_queue, base_url, key, factory).run_forever(exit_when_empty=True, timeout=TIMEOUT)

    done = agent_queue.finished("e2e-1")
    assert done is not None and done.stop == "completed"
    assert done.output == expected_answer(ticks)
    messages = done.session.messages
    assert messages[:len(first.session.messages)] == first.session.messages  # nothing lost or rewritten
    assert _roles(messages) == ["system", "user"] + ["assistant", "tool"] * ticks + ["assistant"]
    assert _tool_contents(messages) == [tick(i) for i in range(1, ticks + 1)]
    assert done.session.step == ticks + 1
    assert woken and woken[0] == len(first.session.messages)  # resumed from the parked transcript
    assert done.session.cost_nanos > 0
    assert agent_queue.parked() == [] and agent_queue.failures() == []


def test_sessions_parked_by_a_killed_process_are_resumed_by_a_new_one(agent_budget_key, agent_models, tmp_path):
    base_url, key = agent_budget_key
    model, _ = agent_models
    queue_dir = tmp_path / "queue"
    env = child_env(base_url, key, model)
    ticks = 4
    task = f"{CONTEXT}\n{script(*['tick'] * ticks)}"
    parker = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "run", task, "--session", "killed-1", "--queue", str(queue_dir), "--hold"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, start_new_session=True)
    try:
        line = parker.stdout.readline()
        assert line.startswith("parked killed-1"), line + parker.stderr.read()
    finally:
        parker.send_signal(signal.SIGKILL)
        parker.wait(timeout=10)
    assert parker.returncode == -signal.SIGKILL

    resumer = subprocess.run(
        [*CLI, "resume", "--queue", str(queue_dir), "--factory", f"{EXAMPLE}:factory", "--base-url", base_url,
         "--exit-when-empty", "--reset-margin", "0.05", "--spread", "0.05", "--poll-interval", "0.1"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=TIMEOUT)
    assert resumer.returncode == 0, resumer.stderr

    done = ParkingQueue(queue_dir).finished("killed-1")
    assert done is not None and done.output == expected_answer(ticks)
    assert _tool_contents(done.session.messages) == [tick(i) for i in range(1, ticks + 1)]

    listing = subprocess.run([*CLI, "queue", "--queue", str(queue_dir), "--json"], capture_output=True, text=True,
                             env=env, cwd=ROOT, timeout=30)
    assert listing.returncode == 0, listing.stderr
    assert '"parked": []' in listing.stdout and '"killed-1"' in listing.stdout


def test_a_resumer_killed_mid_resume_leaves_the_session_for_the_next_one(
        agent_budget_key, agent_models, agent_queue):
    base_url, key = agent_budget_key
    model, _ = agent_models
    ticks = 3
    first = make_agent(base_url, key, model, queue=agent_queue).run(script(*["tick"] * ticks), session_id="mid-1")
    assert first.stop is StopReason.PARKED
    env = child_env(base_url, key, model)
    doomed = subprocess.Popen(
        [*CLI, "resume", "--queue", str(agent_queue.directory), "--factory",
         "tests.integration.agent_fixtures:slow_factory", "--base-url", base_url,
         "--reset-margin", "0.05", "--spread", "0.05", "--poll-interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT, start_new_session=True)
    try:
        assert doomed.stdout.readline().strip() == "TOOL-STARTED"  # it holds the session's lock now
        assert agent_queue.claim("mid-1") is None
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)

    assert agent_queue.get("mid-1") is not None  # still parked: the kill lost nothing
    resumer = subprocess.run(
        [*CLI, "resume", "--queue", str(agent_queue.directory), "--factory", f"{EXAMPLE}:factory",
         "--base-url", base_url, "--exit-when-empty", "--reset-margin", "0.05", "--spread", "0.05",
         "--poll-interval", "0.1"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=TIMEOUT)
    assert resumer.returncode == 0, resumer.stderr
    done = agent_queue.finished("mid-1")
    assert done is not None and done.output == expected_answer(ticks)


def _park(base_url: str, key: str, model: str, queue: ParkingQueue, session_id: str, ticks: int = 4):
    result = make_agent(base_url, key, model, queue=queue).run(script(*["tick"] * ticks), session_id=session_id)
    assert result.stop is StopReason.PARKED, result.stop
    return result


def _park_all(base_url, key, model, queue, ids, ticks=4):
    return [_park(base_url, key, model, queue, session_id, ticks) for session_id in ids]


def test_a_corrupted_queue_file_is_quarantined_and_the_others_still_resume(
        agent_budget_key, agent_models, agent_queue, caplog):
    base_url, key = agent_budget_key
    model, _ = agent_models
    _park_all(base_url, key, model, agent_queue, ["c-1", "c-2", "c-3"], ticks=4)
    broken = agent_queue.directory / "parked" / "c-2.json"
    broken.write_bytes(broken.read_bytes()[:57])  # a torn write, as after a disk fault
    (agent_queue.directory / "parked" / "stray.json").write_text("[1, 2, 3]")

    factory = lambda session: make_agent(base_url, key, model, queue=None)  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="tollgate.agent.queue"):
        assert make_resumer(agent_queue, base_url, key, factory).run_forever(exit_when_empty=True, timeout=TIMEOUT)

    assert {f.session.session_id for f in agent_queue.finished_all()} == {"c-1", "c-3"}
    assert all(f.output == expected_answer(4) for f in agent_queue.finished_all())
    quarantined = agent_queue.quarantined()
    assert sorted(q.path.name.split(".json")[0] for q in quarantined) == ["parked-c-2", "parked-stray"]
    assert any("c-2.json" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert agent_queue.failures() == []


def test_a_key_refused_with_403_sends_the_session_to_the_failed_list(
        agent_budget_key, agent_revoked_key, agent_models, tmp_path):
    base_url, key = agent_budget_key
    revoked_url, revoked = agent_revoked_key
    model, _ = agent_models
    by_usage, by_call = ParkingQueue(tmp_path / "by-usage"), ParkingQueue(tmp_path / "by-call")
    _park(base_url, key, model, by_usage, "r-usage")
    _park(base_url, key, model, by_call, "r-call")

    # The resumer's budget check is refused: nothing is sent, the session fails with the reason.
    never = lambda session: pytest.fail("a session whose key is refused must not be resumed")  # noqa: E731
    assert make_resumer(by_usage, revoked_url, revoked, never).run_forever(exit_when_empty=True, timeout=TIMEOUT)
    # Without a budget check, the resumed call itself is refused.
    resumer = make_resumer(by_call, revoked_url, revoked, lambda s: make_agent(revoked_url, revoked, model, queue=None))
    resumer.usage = None
    assert resumer.run_forever(exit_when_empty=True, timeout=TIMEOUT)

    for queue, session_id in ((by_usage, "r-usage"), (by_call, "r-call")):
        [failure] = queue.failures()
        assert failure.session.session_id == session_id
        assert failure.status == 403 and failure.kind == ErrorKind.AUTH.value
        assert failure.reason in {"key_revoked", "subscription_expired"}
        assert failure.session.messages  # the transcript is kept for a human
        assert queue.parked() == [] and queue.finished_all() == []


def test_parking_the_same_session_twice_keeps_one_entry(agent_budget_key, agent_models, agent_queue):
    base_url, key = agent_budget_key
    model, _ = agent_models
    first = _park(base_url, key, model, agent_queue, "dup", ticks=4)
    second = _park(base_url, key, model, agent_queue, "dup", ticks=4)
    assert len(agent_queue) == 1
    assert agent_queue.get("dup").messages == second.session.messages
    assert [p.name for p in (agent_queue.directory / "parked").iterdir()] == ["dup.json"]
    assert first.session.session_id == second.session.session_id

    factory = lambda session: make_agent(base_url, key, model, queue=None)  # noqa: E731
    assert make_resumer(agent_queue, base_url, key, factory).run_forever(exit_when_empty=True, timeout=TIMEOUT)
    assert [f.session.session_id for f in agent_queue.finished_all()] == ["dup"]


def test_a_full_queue_refuses_new_sessions_loudly_and_evicts_nothing(agent_budget_key, agent_models, tmp_path,
                                                                     caplog):
    base_url, key = agent_budget_key
    model, _ = agent_models
    queue = ParkingQueue(tmp_path / "small", max_entries=2)
    _park_all(base_url, key, model, queue, ["o-1", "o-2"])
    with caplog.at_level(logging.ERROR, logger="tollgate.agent.queue"):
        refused = make_agent(base_url, key, model, queue=queue).run(script(*["tick"] * 4), session_id="o-3")
    assert refused.stop is StopReason.QUEUE_FULL
    assert refused.session.messages and refused.reset_at is not None  # the caller still has everything
    assert {s.session_id for s in queue.parked()} == {"o-1", "o-2"}
    assert any("o-3" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    # Updating a session already parked is not growth: still accepted at capacity.
    assert make_agent(base_url, key, model, queue=queue).run(script(*["tick"] * 4), session_id="o-1").stop \
        is StopReason.PARKED


def test_a_parent_waits_for_its_parked_sub_agent(agent_budget_key, agent_models, agent_queue):
    base_url, key = agent_budget_key
    model, _ = agent_models
    child_ticks = 4

    def research(n: int) -> str:
        """Delegate a sub-task to a sub-agent."""
        child = make_agent(base_url, key, model, queue=None)  # parks into the parent's queue
        return run_subagent(child, script(*["tick"] * child_ticks))

    def build(session):
        order.append(session.session_id)
        tools = [tick] if session.parent_id else [research, tick]
        return make_agent(base_url, key, model, queue=None, tools=tools)

    order: list[str] = []
    first = make_agent(base_url, key, model, queue=agent_queue, tools=[research, tick]).run(
        script("research"), session_id="boss")
    assert first.stop is StopReason.PARKED
    child_id = "boss.call_1"
    assert agent_queue.get("boss").waiting_on == [child_id]
    assert agent_queue.get(child_id).parent_id == "boss"

    assert make_resumer(agent_queue, base_url, key, build).run_forever(exit_when_empty=True, timeout=TIMEOUT)

    assert "boss" in order and child_id in order
    first_parent = order.index("boss")
    assert set(order[:first_parent]) == {child_id} and child_id not in order[first_parent:]
    parent = agent_queue.finished("boss")
    assert parent is not None and parent.output == "done: " + expected_answer(child_ticks)
    assert _tool_contents(parent.session.messages) == [expected_answer(child_ticks)]
    assert agent_queue.finished(child_id).session.parent_id == "boss"


def test_the_loop_downgrades_when_the_budget_runs_low(agent_budget_key, agent_models):
    base_url, key = agent_budget_key
    model, cheap = agent_models
    limit = UsageClient(base_url, key).fetch().limit_nanos
    assert limit
    agent = make_agent(base_url, key, model, queue=None, downgrade=Downgrade(model=cheap, below_fraction="0.6"),
                       limits=Limits(max_steps=12, usage_check_every=1))
    result = agent.run(script(*["tick"] * 6))
    assert result.stop in (StopReason.COMPLETED, StopReason.BUDGET_EXHAUSTED)
    for step in result.steps:
        low = step.remaining_before_nanos is not None and step.remaining_before_nanos * 10 < limit * 6
        assert step.model == (cheap if low else model), step
    assert {s.model for s in result.steps} == {model, cheap}
    assert all(s.cost_nanos and s.cost_nanos > 0 for s in result.steps)


def test_guarded_openai_client_raises_budget_exhausted_with_reset_time_and_never_sleeps(
        agent_budget_key, agent_models):
    base_url, key = agent_budget_key
    model, _ = agent_models
    slept: list[float] = []
    client = guard(openai.OpenAI(base_url=base_url, api_key=key), sleep=slept.append)
    messages = [{"role": "system", "content": CONTEXT * 2}, {"role": "user", "content": "hello"}]
    with pytest.raises(BudgetExhausted) as caught:
        for _ in range(200):
            client.chat.completions.create(model=model, messages=messages)
    assert caught.value.reset_at is not None
    assert isinstance(caught.value.__cause__, openai.RateLimitError)
    assert caught.value.info.code == "budget_exceeded"
    assert slept == []


async def _exhaust_async(base_url: str, key: str, model: str) -> BudgetExhausted:
    client = guard(openai.AsyncOpenAI(base_url=base_url, api_key=key))
    messages = [{"role": "system", "content": CONTEXT * 2}, {"role": "user", "content": "hello"}]
    try:
        for _ in range(200):
            await client.chat.completions.create(model=model, messages=messages)
    except BudgetExhausted as exc:
        return exc
    raise AssertionError("the budget never ran out")


def test_guarded_async_client_raises_budget_exhausted(agent_budget_key, agent_models):
    import asyncio

    base_url, key = agent_budget_key
    model, _ = agent_models
    exc = asyncio.run(_exhaust_async(base_url, key, model))
    assert exc.reset_at is not None and exc.info.status == 429


def test_async_agent_parks_and_resumes_through_the_same_resumer(agent_budget_key, agent_models, agent_queue):
    import asyncio

    base_url, key = agent_budget_key
    model, _ = agent_models

    def build(session=None):
        from tests.integration.agent_fixtures import SYSTEM

        return AsyncAgent(openai.AsyncOpenAI(base_url=base_url, api_key=key), model, tools=[tick], system=SYSTEM,
                          queue=agent_queue if session is None else None, limits=Limits(usage_check_every=1))

    first = asyncio.run(build().run(script(*["tick"] * 4), session_id="async-1"))
    assert first.stop is StopReason.PARKED
    assert make_resumer(agent_queue, base_url, key, build).run_forever(exit_when_empty=True, timeout=TIMEOUT)
    assert agent_queue.finished("async-1").output == expected_answer(4)


def test_cli_queue_lists_what_is_parked(agent_budget_key, agent_models, agent_queue):
    base_url, key = agent_budget_key
    model, _ = agent_models
    _park(base_url, key, model, agent_queue, "listed")
    table = subprocess.run([*CLI, "queue", "--queue", str(agent_queue.directory)], capture_output=True, text=True,
                           env=child_env(base_url, key, model), cwd=ROOT, timeout=30)
    assert table.returncode == 0
    assert "parked" in table.stdout and "listed" in table.stdout and "budget" in table.stdout
    assert Path(agent_queue.directory).exists()
