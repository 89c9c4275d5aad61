"""Starting real server processes for tests: the gateway and fake upstreams."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.scaled_suite import scaled
from tests.support.toml import dumps

ROOT = Path(__file__).resolve().parents[2]
# An operator token as strong as tollgate requires (32+ characters, not guessable).
ADMIN_TOKEN = "tga_test_Hzx9VN2oyKJI0wFt-4vdezM79DsMliZgu04rHsO8r0A"


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text() if log and log.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before answering {url}\n{text[-3000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class Process:
    def __init__(self, args: list[str], url: str, log: Path, env: dict | None = None) -> None:
        self.args, self.url, self.log = args, url, log
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, ready_path: str, timeout: float = 60.0) -> Process:
        handle = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=handle, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
                                     start_new_session=True)
        wait_http(self.url + ready_path, self.proc, timeout, self.log)
        return self

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_upstream(tmp: Path, name: str = "fake", fail_status: int | None = None, tokenizer: str | None = None) -> Process:
    port = free_port()
    args = [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", str(port), "--name", name]
    if fail_status:
        args += ["--fail-status", str(fail_status)]
    if tokenizer:
        args += ["--tokenizer", tokenizer]
    return Process(args, f"http://127.0.0.1:{port}", tmp / f"upstream-{name}-{port}.log").start("/v1/models")


class Gateway(Process):
    """A running tollgate, with helpers for the operator API."""

    def __init__(self, tmp: Path, config: dict, env: dict | None = None) -> None:
        port = free_port()
        config = scaled(config, tmp)  # PostgreSQL and Redis instead of SQLite in the scaled run of the suite
        config = {**config, "server": {"host": "127.0.0.1", "port": port,
                                       "database": f"sqlite:///{tmp / 'tollgate.db'}", **config.get("server", {})}}
        self.config_path = tmp / f"tollgate-{port}.toml"
        self.config_path.write_text(dumps(config))
        self.admin_token = ADMIN_TOKEN
        args = [sys.executable, "-m", "tollgate", "serve", "--config", str(self.config_path)]
        super().__init__(args, f"http://127.0.0.1:{port}", tmp / f"gateway-{port}.log",
                         {"TOLLGATE_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})})

    def admin(self, method: str, path: str, json: dict | None = None, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.request(method, self.url + path, json=json, headers=headers, timeout=30)

    def manage(self, method: str, path: str, key: str, json: dict | None = None) -> httpx.Response:
        return httpx.request(method, self.url + path, json=json, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def account(self, name: str = "acme") -> tuple[str, str]:
        """(account id, management key) of a new account."""
        r = self.admin("POST", "/admin/accounts", {"name": name})
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        return data["id"], data["managementKey"]

    def subscribe(self, account_id: str, plan: str = "standard", **extra) -> str:
        r = self.admin("POST", f"/admin/accounts/{account_id}/subscriptions", {"plan": plan, **extra})
        assert r.status_code == 201, r.text
        return r.json()["data"]["id"]

    def key(self, plan: str = "standard", budget: dict | None = None, name: str = "k") -> dict:
        """A fresh account with a subscription of `plan` and one key: ids and secrets."""
        account_id, mk = self.account(name)
        sub = self.subscribe(account_id, plan)
        body = {"name": name, "subscriptionId": sub}
        if budget:
            body["budget"] = budget
        r = self.manage("POST", "/api/keys/subscription", mk, body)
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        return {"account": account_id, "mk": mk, "subscription": sub, "key_id": data["id"], "sk": data["apiKey"]}
