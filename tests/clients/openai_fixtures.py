"""Fixtures for the OpenAI-API clients (Codex CLI, the OpenAI Agents SDK, LangGraph).

Each client runs against the real gateway, with the fake OpenAI-format upstream
(tests/fakes/openai_upstream.py) behind it. Codex CLI comes from
scripts/codex-install.sh (pinned, cached; its path in TOLLGATE_CODEX_BIN); the
Python clients from the `test` extra. A client that is not installed skips its
tests, unless TOLLGATE_CLIENTS_REQUIRED=1, where that is a failure.

Billing is checked against what the fake upstream itself reported (its
`/_stats` `usages`), priced at the model's prices: the gateway must bill exactly
that, no more and no less.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.processes import Gateway, Process

OPENAI_MODEL = "fake-chat"
# fake-chat's prices in nano-dollars per token ($1.00 and $2.00 per million).
OPENAI_IN, OPENAI_OUT = 1000, 2000
CODEX_TIMEOUT = 120.0  # one `codex exec` run, whatever it does
BUDGET_MESSAGE = "budget exceeded: usage limit reached for this 5h window; resets at "
# Plans with room for agents' prompts (Codex sends about 6K tokens a request): per-minute limits that
# never interfere, a budget a turn fits in (`roomy`), and one that a few requests spend (`small`: still
# larger than one agent request, else the refusal is the 400 request_exceeds_budget, not the 429).
AGENT_PLANS = [
    {"slug": "roomy", "name": "Roomy", "window": "5h", "budget_per_window": "1.00", "rpm": 1000, "tpm": 10_000_000},
    {"slug": "small", "name": "Small", "window": "5h", "budget_per_window": "0.10", "rpm": 1000, "tpm": 10_000_000},
]


def clients_required() -> bool:
    return os.environ.get("TOLLGATE_CLIENTS_REQUIRED") == "1"


def need(what: str, why: str) -> None:
    """Skip (or fail, when the clients are required) for a client that is not installed."""
    if clients_required():
        pytest.fail(f"{what} is required (TOLLGATE_CLIENTS_REQUIRED=1) but {why}")
    pytest.skip(f"{what}: {why}")


def need_module(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        need(what, f"the Python module {module!r} is not installed (pip install -e '.[test]')")


@dataclass
class OpenAIRig:
    """A gateway in front of one fake upstream, with the helpers the client tests share."""

    gateway: Gateway
    upstream: Process

    @property
    def base_url(self) -> str:
        return self.gateway.url + "/v1"

    def key(self, plan: str = "roomy") -> dict:
        return self.gateway.key(plan=plan)

    def total(self, key: dict) -> dict:
        """The key's spend report total (`spentNanos`, `requests`: every request, refused ones too)."""
        r = self.gateway.manage("GET", f"/api/usage/{key['key_id']}", key["mk"])
        assert r.status_code == 200, r.text
        return r.json()["data"]["total"]

    def requests_settle(self, key: dict, expected: int, timeout: float = 5.0) -> int:
        """The key's request count once it reaches `expected` (records are written a few ms after the answer)."""
        deadline = time.monotonic() + timeout
        count = self.total(key)["requests"]
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.total(key)["requests"]
        return count

    def reported(self) -> list[dict]:
        """Every usage block the fake upstream reported, oldest first."""
        return httpx.get(self.upstream.url + "/_stats", timeout=10).json()["usages"]

    def upstream_requests(self) -> int:
        return httpx.get(self.upstream.url + "/_stats", timeout=10).json()["requests"]

    def bill_of(self, usages: list[dict]) -> int:
        return sum(u["prompt_tokens"] * OPENAI_IN + u["completion_tokens"] * OPENAI_OUT for u in usages)

    def check_billed_as_reported(self, key: dict, turns: int) -> None:
        """The key's records equal the usage the upstream reported, turn for turn, priced exactly."""
        reported = self.reported()
        assert len(reported) == turns
        assert self.requests_settle(key, turns) == turns  # records land a few ms after the answer
        total = self.total(key)
        assert (total["inputTokens"], total["outputTokens"]) == (
            sum(u["prompt_tokens"] for u in reported), sum(u["completion_tokens"] for u in reported))
        assert total["spentNanos"] == self.bill_of(reported) > 0

    def check_stopped_at_once(self, key: dict, before: int) -> None:
        """A client refused for a spent budget sent one request: no retry (so no sleep between retries
        either; each client's run is bounded far below the hours-long Retry-After besides)."""
        assert self.requests_settle(key, before + 1) == before + 1
        time.sleep(0.5)
        assert self.total(key)["requests"] == before + 1

    def spent_key(self) -> tuple[dict, dict, int]:
        """(a key whose window is spent, the budget 429's error, the key's request count so far)."""
        key = self.key(plan="small")
        error = self.spend(key)
        return key, error, self.total(key)["requests"]

    def spend(self, key: dict) -> dict:
        """Spend the key's window with ordinary requests (bounded); returns the budget 429's error once
        every one of them is in the key's records (so that a count taken next is not behind)."""
        for attempt in range(1, 51):
            r = httpx.post(self.base_url + "/chat/completions", timeout=30,
                           headers={"Authorization": f"Bearer {key['sk']}"},
                           json={"model": OPENAI_MODEL,
                                 "messages": [{"role": "user", "content": "spend [[reply:4000]]"}]})
            if r.status_code == 429:
                error = r.json()["error"]
                assert error["code"] == "budget_exceeded", error
                assert self.requests_settle(key, attempt) == attempt
                return error
            assert r.status_code == 200, r.text
        raise AssertionError("the budget never ran out")


@pytest.fixture
def openai_rig(upstream_factory, gateway_factory) -> OpenAIRig:
    upstream = upstream_factory()
    config = fake_config(upstream.url)
    config["plans"] = config["plans"] + AGENT_PLANS
    return OpenAIRig(gateway_factory(config), upstream)


@pytest.fixture
def codex_bin() -> str:
    path = os.environ.get("TOLLGATE_CODEX_BIN")
    if not path:
        need("Codex CLI", "TOLLGATE_CODEX_BIN is not set (eval \"$(scripts/codex-install.sh --print-env)\")")
    assert path is not None
    if not os.access(path, os.X_OK):
        need("Codex CLI", f"TOLLGATE_CODEX_BIN={path} is not an executable")
    return path


@dataclass
class CodexRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture
def run_codex(codex_bin: str, tmp_path: Path) -> Iterator[Callable[..., CodexRun]]:
    """`codex exec` against the rig: a private HOME and CODEX_HOME, a custom provider with
    `wire_api = "responses"` at the gateway's /v1, and an environment built from nothing
    (no OPENAI_* of the developer's leaks in)."""

    def run(rig: OpenAIRig, key: dict, prompt: str, timeout: float = CODEX_TIMEOUT) -> CodexRun:
        home = tmp_path / "codex-home"
        codex_home = home / ".codex"
        work = tmp_path / "codex-work"
        codex_home.mkdir(parents=True, exist_ok=True)
        work.mkdir(exist_ok=True)
        (codex_home / "config.toml").write_text(
            f'model = "{OPENAI_MODEL}"\n'
            'model_provider = "tollgate"\n'
            'approval_policy = "never"\n'
            'sandbox_mode = "danger-full-access"\n'  # the tool runs here, in a private folder; no bubblewrap needed
            "[model_providers.tollgate]\n"
            'name = "tollgate"\n'
            f'base_url = "{rig.base_url}"\n'
            'env_key = "TOLLGATE_API_KEY"\n'
            'wire_api = "responses"\n'
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(codex_home),
               "TOLLGATE_API_KEY": key["sk"], "LANG": "C.UTF-8", "NO_COLOR": "1"}
        started = time.monotonic()
        try:
            done = subprocess.run([codex_bin, "exec", "--skip-git-repo-check", "--color", "never", prompt],
                                  cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"codex exec ran past {timeout}s: {exc.stderr!r}") from None
        (tmp_path / "codex-stderr.txt").write_text(done.stderr)  # for a failure's post-mortem
        return CodexRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    yield run
