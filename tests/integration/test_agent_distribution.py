"""E2E (packaging): the agent toolkit installed ALONE, in a fresh venv, parks and resumes for real.

`tollgate.agent` is documented as needing only the `openai` SDK. This builds the
`tollgate-agent` distribution (./agent) into a brand-new `python -m venv`, checks that
nothing of the gateway came with it (no uvicorn, uvloop, httptools, NumPy, orjson, no
other `tollgate` module), then runs `examples/agent_park_and_resume.py` and the toolkit's
own resumer (`tollgate-agent resume`) with that venv's interpreter against a running
gateway: the task must park on the budget 429 and finish after the window resets.

Needs PyPI (pip fetches `openai`, its dependencies and the build backend). Without it the
test fails and says so: a packaging check that silently skipped would prove nothing.
Everything it writes lives in pytest's tmp dir, except pip's own download cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tollgate.agent import ParkingQueue

from tests.integration.agent_fixtures import (  # noqa: F401 (fixtures)
    CONTEXT,
    ROOT,
    agent_budget_key,
    agent_models,
    expected_answer,
    fake_budget_gateway,
    script,
    tick,
)

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "agent_park_and_resume.py"
SERVER_DISTRIBUTIONS = {"uvicorn", "uvloop", "httptools", "numpy", "orjson", "tollgate"}
SERVER_MODULES = ["uvicorn", "uvloop", "httptools", "numpy", "orjson", "tollgate.cli", "tollgate.domain",
                  "tollgate.proxy", "tollgate.ledger", "tollgate.version"]
INSTALL_TIMEOUT = 600  # a cold pip cache downloads openai's dependencies and the build backend
RUN_TIMEOUT = 120  # a few 1-2 s budget windows, with a wide margin

_INSPECT = """
import importlib.metadata as md, importlib.util, json, pkgutil, sys
import tollgate, tollgate.agent
names = json.loads(sys.argv[1])
print(json.dumps({
    "distributions": sorted({d.metadata["Name"].lower() for d in md.distributions()}),
    "requires": md.requires("tollgate-agent"),
    "importable": [n for n in names if importlib.util.find_spec(n) is not None],
    "namespace": sorted(m.name for m in pkgutil.iter_modules(tollgate.__path__)),
    "agent_file": tollgate.agent.__file__,
}))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would let the repo's code leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    return {**env, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def _run(argv: list[str], *, timeout: float, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def agent_only_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the tollgate-agent distribution and its dependencies, nothing else."""
    tmp = tmp_path_factory.mktemp("agent-dist")
    # Build from a copy, so that setuptools' build/ and *.egg-info land here, not in the checkout.
    source = tmp / "agent-src"
    shutil.copytree(ROOT / "agent", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], timeout=120, cwd=tmp, env=_clean_env())
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", str(source)], timeout=INSTALL_TIMEOUT, cwd=tmp,
                     env=_clean_env())
    if installed.returncode != 0:
        pytest.fail("pip could not install ./agent into a fresh venv. It needs PyPI (or a mirror in pip's "
                    "config) for `openai`, its dependencies and setuptools; is the network up?\n"
                    + installed.stderr[-3000:], pytrace=False)
    return venv


def test_the_agent_distribution_installs_only_openai_and_itself(agent_only_venv, tmp_path):
    python = agent_only_venv / "bin" / "python"
    inspected = _run([str(python), "-I", "-c", _INSPECT, json.dumps(SERVER_MODULES)], timeout=60, cwd=tmp_path,
                     env=_clean_env())
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads(inspected.stdout)
    assert {"tollgate-agent", "openai"} <= set(report["distributions"])
    assert SERVER_DISTRIBUTIONS & set(report["distributions"]) == set()
    assert report["requires"] == ["openai>=1.40"]
    assert report["importable"] == []
    assert report["namespace"] == ["agent"]  # `tollgate` holds the toolkit and nothing else
    assert Path(report["agent_file"]).is_relative_to(agent_only_venv)  # the installed copy, not the checkout


def test_the_example_parks_on_the_budget_429_and_resumes_after_the_reset(
        agent_only_venv, agent_budget_key, agent_models, tmp_path):
    base_url, key = agent_budget_key
    model, _ = agent_models
    python, resumer = agent_only_venv / "bin" / "python", agent_only_venv / "bin" / "tollgate-agent"
    queue_dir = tmp_path / "queue"
    env = _clean_env(TOLLGATE_BASE_URL=base_url, TOLLGATE_API_KEY=key, TOLLGATE_MODEL=model,
                     PYTHONUNBUFFERED="1")
    ticks = 6  # more steps than one window affords, so the task must span several
    task = f"{CONTEXT}\n{script(*['tick'] * ticks)}"

    ran = _run([str(python), "-I", str(EXAMPLE), "run", task, "--session", "dist-1", "--queue", str(queue_dir)],
               timeout=RUN_TIMEOUT, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("parked dist-1 until "), ran.stdout + ran.stderr
    parked = ParkingQueue(queue_dir).get("dist-1")
    assert parked is not None and parked.reset_at is not None
    assert parked.reason == "budget_exceeded"  # parked on the gateway's budget 429
    assert 0 < parked.step < ticks + 1

    resumed = _run([str(resumer), "resume", "--queue", str(queue_dir), "--factory", f"{EXAMPLE}:factory",
                    "--base-url", base_url, "--exit-when-empty", "--max-attempts", "20", "--reset-margin", "0.05",
                    "--spread", "0.05", "--poll-interval", "0.1"], timeout=RUN_TIMEOUT, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr

    queue = ParkingQueue(queue_dir)
    done = queue.finished("dist-1")
    assert done is not None, resumed.stderr
    assert done.stop == "completed" and done.output == expected_answer(ticks)
    messages = done.session.messages
    assert messages[:len(parked.messages)] == parked.messages  # continued from the parked transcript
    assert [m["content"] for m in messages if m["role"] == "tool"] == [tick(i) for i in range(1, ticks + 1)]
    assert done.session.resumes >= 1 and done.finished_at >= parked.reset_at  # only after the window reset
    assert queue.parked() == [] and queue.failures() == []

    listing = _run([str(python), "-I", "-m", "tollgate.agent", "queue", "--queue", str(queue_dir), "--json"],
                   timeout=60, cwd=tmp_path, env=env)
    assert listing.returncode == 0, listing.stderr
    assert [d["session_id"] for d in json.loads(listing.stdout)["done"]] == ["dist-1"]
