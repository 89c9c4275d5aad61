"""Fixtures for the Anthropic-API clients (Claude Code).

Claude Code comes from scripts/claude-code-install.sh (a pinned npm package with a native binary,
cached); its path arrives in TOLLGATE_CLAUDE_BIN. Without it these tests skip, unless
TOLLGATE_CLIENTS_REQUIRED=1, where a missing install is a failure.

Claude Code runs headless (`claude -p`) with a private HOME and an environment built from
nothing (no ANTHROPIC_* of the developer's leaks in), against the real gateway, through
`Recorder`: a small reverse proxy that notes every request the client makes, so a test can say
how many it sent (a retry storm shows there) and what they were.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.processes import Gateway

# What tests/clients/conftest.py's star import takes: the fixtures, nothing that could shadow a name
# of the OpenAI clients' fixtures module.
__all__ = ["claude_bin", "claude_code", "claude_gateway", "recorder"]

CLAUDE_TIMEOUT = 120.0  # one `claude -p` run, whatever it does
ALIAS = "claude-sonnet-4-5"  # a model id Claude Code knows (no unrecognised-model warning, a known window)
CATEGORIES = ("simple", "general", "reasoning", "code", "agent")
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Seen:
    method: str
    path: str
    status: int


@dataclass
class Recorder:
    """A reverse proxy to `target` on a free local port, noting each request (method, path, status).

    Answers are passed on as they arrive (chunked), so streams stay streams. Every upstream read
    has a timeout; the server thread is a daemon and `close` stops it.
    """

    target: str
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                with httpx.Client(timeout=httpx.Timeout(60.0)) as client, \
                        client.stream(self.command, recorder.target + self.path, headers=headers, content=body) as r:
                    recorder.seen.append(Seen(self.command, self.path, r.status_code))
                    self.send_response(r.status_code)
                    for name, value in r.headers.multi_items():
                        if name.lower() not in HOP_HEADERS:
                            self.send_header(name, value)
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for chunk in r.iter_raw():
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def messages(self) -> list[Seen]:
        """The model requests (POST /anthropic/v1/messages, any query string)."""
        return [s for s in self.seen if s.method == "POST" and s.path.split("?")[0] == "/anthropic/v1/messages"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class ClaudeRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class ClaudeCode:
    """The installed Claude Code binary, run headless with a private HOME under `root`."""

    binary: str
    root: Path

    def run(self, base_url: str, api_key: str, prompt: str, *args: str, model: str = ALIAS,
            timeout: float = CLAUDE_TIMEOUT) -> ClaudeRun:
        home, work = self.root / "home", self.root / "work"
        home.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
            "SHELL": "/bin/bash",
            "ANTHROPIC_BASE_URL": base_url + "/anthropic", "ANTHROPIC_API_KEY": api_key,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": ALIAS,  # its small fast model, should it want one
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
        }
        started = time.monotonic()
        try:
            done = subprocess.run([self.binary, "-p", prompt, "--model", model, *args], cwd=work, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise AssertionError(f"claude -p ran past {timeout}s\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}") from None
        return ClaudeRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@pytest.fixture(scope="session")
def claude_bin() -> str:
    path = os.environ.get("TOLLGATE_CLAUDE_BIN")
    if not path or not os.access(path, os.X_OK):
        message = ("Claude Code tests: TOLLGATE_CLAUDE_BIN is unset or not executable; "
                   'eval "$(scripts/claude-code-install.sh --print-env)" first')
        if os.environ.get("TOLLGATE_CLIENTS_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def claude_code(claude_bin, tmp_path) -> ClaudeCode:
    return ClaudeCode(claude_bin, tmp_path)


def claude_gateway_config(upstream_url: str) -> dict:
    """The fake upstream's `fake-chat`, known to Claude Code as `claude-sonnet-4-5`, with room for
    Claude Code's prompt (tens of thousands of tokens) and its `max_tokens` of 32000; `spender`, a
    dear model to spend a budget with; the `claude` plan, whose window budget fits one Claude Code
    turn and a half."""
    config = fake_config(upstream_url)
    chat = config["models"][0]
    chat.update({"aliases": ["fc", ALIAS], "context": 400_000, "max_output": 32_000})
    config["models"].append({"id": "spender", "upstream": "fake", "input_per_mtok": "1.00",
                             "output_per_mtok": "1000.00", "max_output": 4096})
    config["routes"] = {"auto": {c: ["fake-chat"] for c in CATEGORIES}}
    config["plans"].append({"slug": "claude", "window": "5h", "budget_per_window": "0.50", "rpm": 1000,
                            "tpm": 100_000_000})
    return config


@pytest.fixture
def claude_gateway(claude_bin, gateway_factory, fake_upstream) -> Gateway:
    return gateway_factory(claude_gateway_config(fake_upstream.url))


@pytest.fixture
def recorder(claude_gateway) -> Iterator[Recorder]:
    r = Recorder(claude_gateway.url)
    yield r
    r.close()
