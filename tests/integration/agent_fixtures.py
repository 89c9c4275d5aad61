"""Fixtures for the agent toolkit's end-to-end tests: the gateway under test, keys, helpers.

The tests talk HTTP to a gateway process through the official `openai` SDK. Today that is
`tests/fakes/budget_gateway.py` (1-second budget windows). To run the same tests against
the real tollgate gateway, define these fixtures in `tests/conftest.py`; they take priority:

    tollgate_agent_budget_key  -> (base_url, api_key)   a FRESH key per test, budget window 1-2 s,
                                                        budget affording 1-3 steps of the tests' tasks
    tollgate_agent_revoked_key -> (base_url, api_key)   a key that answers 403 (revoked or expired)
    tollgate_agent_models      -> (model, cheaper_model) both served by an upstream that answers
                                  with `tests.fakes.budget_gateway.scripted_reply(messages)`;
                                  the cheaper one at most a fifth of the price

Nothing here relies on fake-only behaviour: the tests read costs and reset times from the
responses, never from the fake's configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from tollgate.agent import Agent, Limits, ParkingQueue, Resumer, Session, UsageClient

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "fakes" / "budget_gateway.py"
FAKE_WINDOW_SECONDS = "1"
FAKE_BUDGET_USD = "0.008"

# About 1,500 characters of standing context, so each step costs roughly the same and a
# window affords a few steps, whatever the transcript's length so far.
CONTEXT = "Follow the script exactly. " + " ".join(
    f"Rule {i}: keep every tool result verbatim and in order." for i in range(1, 31))
SYSTEM = "You are a careful agent. " + CONTEXT


def tick(n: int) -> str:
    """Count one step; returns the text the scripted model will repeat in its answer."""
    return f"tick {n}"


def expected_answer(count: int) -> str:
    return "done: " + " | ".join(tick(i) for i in range(1, count + 1))


def script(*tools: str) -> str:
    return f"Run the script. [[script:{','.join(tools)}]]"


def _override(request: pytest.FixtureRequest, name: str) -> Any:
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return None


@pytest.fixture(scope="session")
def fake_budget_gateway() -> Iterator[str]:
    """A running `budget_gateway.py` process; yields its base URL (ending in /v1)."""
    proc = subprocess.Popen(
        [sys.executable, str(FAKE), "--port", "0", "--window", FAKE_WINDOW_SECONDS, "--budget-usd", FAKE_BUDGET_USD],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"fake gateway did not start: {line!r}")
    yield line.split(" ", 1)[1]
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def agent_budget_key(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(base_url, api_key): a fresh key with a small budget and a 1-2 s window."""
    real = _override(request, "tollgate_agent_budget_key")
    if real is not None:
        return tuple(real)  # type: ignore[return-value]
    return request.getfixturevalue("fake_budget_gateway"), f"sk_budget_{uuid.uuid4().hex}"


@pytest.fixture
def agent_revoked_key(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(base_url, api_key): a key the gateway refuses with 403."""
    real = _override(request, "tollgate_agent_revoked_key")
    if real is not None:
        return tuple(real)  # type: ignore[return-value]
    return request.getfixturevalue("fake_budget_gateway"), f"sk_revoked_{uuid.uuid4().hex}"


@pytest.fixture
def agent_models(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(model, cheaper_model), both answered by the scripted model."""
    real = _override(request, "tollgate_agent_models")
    return tuple(real) if real is not None else ("tg-scripted", "tg-scripted-mini")  # type: ignore[return-value]


@pytest.fixture
def agent_queue(tmp_path: Path) -> ParkingQueue:
    return ParkingQueue(tmp_path / "queue")


def make_agent(base_url: str, api_key: str, model: str, *, queue: ParkingQueue | None,
               tools: list[Callable[..., Any]] | None = None, **options: Any) -> Agent:
    """The tests' agent: the scripted task's tools, a budget check every step, no real sleeps."""
    options.setdefault("limits", Limits(max_steps=40, usage_check_every=1))
    return Agent(OpenAI(base_url=base_url, api_key=api_key), model, tools=tools or [tick], system=SYSTEM,
                 queue=queue, **options)


def make_resumer(queue: ParkingQueue, base_url: str, api_key: str, factory: Callable[[Session], Any],
                 **options: Any) -> Resumer:
    """A resumer tuned for 1-2 s windows: little margin, little jitter, fast polling."""
    options.setdefault("reset_margin", 0.05)
    options.setdefault("spread_per_session", 0.05)
    options.setdefault("poll_interval", 0.1)
    # Every re-park counts an attempt; the tests' windows afford only 1-3 steps each, so a task
    # of several steps spans several windows (and several re-parks) by design.
    options.setdefault("max_attempts", 20)
    return Resumer(queue, factory, usage=UsageClient(base_url, api_key), **options)


def slow_factory(session: Session) -> Agent:
    """A factory whose tool blocks for minutes, so a test can kill the resumer mid-resume."""
    def tick(n: int) -> str:
        print("TOOL-STARTED", flush=True)
        time.sleep(300)
        return f"tick {n}"

    client = OpenAI(base_url=os.environ["TOLLGATE_BASE_URL"], api_key=os.environ["TOLLGATE_API_KEY"])
    return Agent(client, session.model, tools=[tick], system=SYSTEM)


def child_env(base_url: str, api_key: str, model: str) -> dict[str, str]:
    """Environment for the example script and the CLI in a subprocess."""
    return {**os.environ, "TOLLGATE_BASE_URL": base_url, "TOLLGATE_API_KEY": api_key, "TOLLGATE_MODEL": model,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "agent" / "src"), str(ROOT)]),
            "PYTHONUNBUFFERED": "1"}
