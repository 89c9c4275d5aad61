"""Driving a real OpenClaw (installed by scripts/openclaw-install.sh) from tests.

OpenClaw is configured by its config file alone ($HOME/.openclaw/openclaw.json) in a throwaway
HOME; every outbound feature that could reach past loopback or start turns by itself is off.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openclaw_target import Key, Target, http_json

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "integrations" / "openclaw"
PLUGIN_ID = "tollgate-budget-park"


@dataclass(frozen=True)
class Install:
    node: Path
    openclaw: Path

    @staticmethod
    def find() -> "Install | None":
        """From OPENCLAW_NODE_BIN and OPENCLAW_BIN, which scripts/openclaw-test.sh sets from the
        install script. Without them the suite stays out of a plain `pytest tests` run."""
        node, oc = os.environ.get("OPENCLAW_NODE_BIN"), os.environ.get("OPENCLAW_BIN")
        if node and oc and Path(node).exists() and Path(oc).exists():
            return Install(Path(node), Path(oc))
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def provider_entry(target: Target, key: Key) -> dict[str, Any]:
    return {
        "baseUrl": target.base_url,  # OpenClaw appends /chat/completions
        "apiKey": key.secret,
        "api": "openai-completions",
        "models": [{
            "id": target.model, "name": "tollgate test model", "reasoning": False, "input": ["text"],
            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
            "contextWindow": 128000, "maxTokens": 1024,
        }],
    }


def base_config(providers: dict[str, dict[str, Any]], primary: str) -> dict[str, Any]:
    return {
        "models": {"catalogRefresh": {"enabled": False}, "providers": providers},
        "agents": {"defaults": {"model": {"primary": primary}}},
        "discovery": {"mdns": {"mode": "off"}},
        "cron": {"enabled": False},
        "update": {"checkOnStart": False},
        "telemetry": {"enabled": False},
    }


@dataclass
class OpenClaw:
    install: Install
    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        tmp = self.home / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "PATH": f"{self.install.node.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(self.home), "TMPDIR": str(tmp),
            "OPENCLAW_NO_AUTO_UPDATE": "1", "DO_NOT_TRACK": "1", "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_SKIP_CHANNELS": "1", "OPENCLAW_NO_RESPAWN": "1", "OPENCLAW_SKIP_CRON": "1",
            "NO_COLOR": "1", **self.extra_env,
        }

    def write_config(self, config: dict[str, Any]) -> Path:
        path = self.home / ".openclaw" / "openclaw.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2))
        return path

    def cmd(self, *args: str) -> list[str]:
        return [str(self.install.node), str(self.install.openclaw), *args]

    def exec_turn(self, prompt: str, timeout_s: int = 120) -> "ExecResult":
        """`openclaw agent exec`: one turn, no gateway process, JSON on stdout."""
        work = self.home / "work"
        work.mkdir(exist_ok=True)
        started = time.monotonic()
        proc = subprocess.run(self.cmd("agent", "exec", prompt, "--cwd", str(work), "--json", "--timeout", str(timeout_s)),
                              env=self.env(), capture_output=True, text=True, timeout=timeout_s + 120)
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            data = None
        return ExecResult(proc.returncode, data, proc.stdout, proc.stderr, time.monotonic() - started)


@dataclass
class ExecResult:
    returncode: int
    data: dict[str, Any] | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.data and self.data.get("ok"))

    @property
    def error_message(self) -> str:
        return str(((self.data or {}).get("error") or {}).get("message", ""))

    def __repr__(self) -> str:  # what a failed assertion shows
        return f"ExecResult(rc={self.returncode}, data={self.data}, stderr tail={self.stderr[-2000:]!r})"


class GatewayProcess:
    """`openclaw gateway run` in the background, with helpers to talk to it."""

    def __init__(self, oc: OpenClaw, port: int, token: str) -> None:
        self.oc, self.port, self.token = oc, port, token
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = oc.home / "gateway.log"
        self.proc: subprocess.Popen | None = None

    def launch(self) -> "GatewayProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.oc.cmd("gateway", "run"), env=self.oc.env(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 180) -> "GatewayProcess":
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, body, _ = http_json("GET", self.url + "/readyz", timeout=2)
                if status == 200 and isinstance(body, dict) and body.get("ready"):
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"gateway not ready after {timeout}s:\n{self.log_tail()}")

    def start(self, timeout: float = 180) -> "GatewayProcess":
        return self.launch().wait_ready(timeout)

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the gateway's own process group (it has a helper child), then SIGKILL."""
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def turn(self, session_key: str, message: str, model: str | None = None, timeout: float = 180) -> tuple[int, Any]:
        """One agent turn through the gateway's OpenAI-compatible endpoint, in a named session."""
        headers = {"x-openclaw-session-key": session_key}
        if model:
            headers["x-openclaw-model"] = model
        status, body, _ = http_json("POST", self.url + "/v1/chat/completions",
                                    {"model": "openclaw", "messages": [{"role": "user", "content": message}]},
                                    token=self.token, headers=headers, timeout=timeout)
        return status, body

    def call(self, method: str, params: dict[str, Any], scopes: tuple[str, ...] = ("operator.read",)) -> Any:
        """One request over the gateway's WebSocket protocol (v4), as a loopback backend client."""
        return asyncio.run(self._call(method, params, list(scopes)))

    async def _call(self, method: str, params: dict[str, Any], scopes: list[str]) -> Any:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://127.0.0.1:{self.port}") as ws:
            async def reply(want_id: str | None, want_event: str | None = None) -> dict[str, Any]:
                while True:
                    msg = await asyncio.wait_for(ws.receive_json(), timeout=30)
                    if want_event and msg.get("type") == "event" and msg.get("event") == want_event:
                        return msg
                    if want_id and msg.get("type") == "res" and msg.get("id") == want_id:
                        if not msg.get("ok"):
                            raise RuntimeError(f"{method}: {msg.get('error')}")
                        return msg.get("payload")

            await reply(None, "connect.challenge")
            await ws.send_json({"type": "req", "id": "c1", "method": "connect", "params": {
                "minProtocol": 4, "maxProtocol": 4,
                "client": {"id": "gateway-client", "version": "0.1.0", "platform": "linux", "mode": "backend"},
                "role": "operator", "scopes": scopes, "caps": [], "commands": [], "permissions": {},
                "auth": {"token": self.token}, "locale": "en-US", "userAgent": "tollgate-tests/0.1"}})
            await reply("c1")
            await ws.send_json({"type": "req", "id": "m1", "method": method, "params": params})
            return await reply("m1")


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""
