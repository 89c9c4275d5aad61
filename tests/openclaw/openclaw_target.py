"""The gateway the OpenClaw tests point at: the real tollgate (default) or the stand-in.

Every test talks to its target only through `Target` below. To run the suite against the real
tollgate, write another class with the same members (see docs/openclaw.md, "Swapping in the real
gateway") and return it from `start_target` when TOLLGATE_OPENCLAW_TARGET asks for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Key:
    id: str
    secret: str


@dataclass(frozen=True)
class Record:
    """One data-plane request as the gateway billed (or refused) it."""

    status: int
    code: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_nanos: int
    user_agent: str
    transcript: list[dict[str, Any]]  # non-system messages: {"role", "text"}


class Target(Protocol):
    base_url: str  # OpenAI base, ".../v1"
    model: str  # model id OpenClaw is configured with
    reply_text: str  # what the upstream answers to any prompt

    def new_key(self, *, budget_usd: str, window: str, rpm: int) -> Key: ...
    def records(self, key: Key) -> list[Record]: ...
    def usage(self, key: Key) -> dict[str, Any]: ...
    def prices(self) -> tuple[int, int]: ...  # nano-dollars per million tokens: (input, output)
    def stop(self) -> None: ...


def http_json(method: str, url: str, body: Any = None, token: str | None = None,
              headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any, dict[str, str]]:
    """A JSON request with the standard library; returns (status, parsed body, headers)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            raw, status, hdrs = res.read(), res.status, dict(res.headers.items())
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, dict(e.headers.items())
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return status, parsed, hdrs


class StandinTarget:
    """tests/openclaw/standin_gateway.py as a separate process."""

    model = "tollgate-test"
    reply_text = "Done: the tollgate stand-in answered."

    def __init__(self, tmp: Path) -> None:
        self.admin_token = "standin-admin-" + os.urandom(6).hex()
        self.log = open(tmp / "standin.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "standin_gateway.py"), "--port", "0", "--admin-token", self.admin_token],
            stdout=subprocess.PIPE, stderr=self.log, start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"stand-in gateway did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        self.base_url = self.url + "/v1"

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        status, data, _ = http_json(method, self.url + path, body, token=self.admin_token)
        assert status == 200, (status, data)
        return data

    def new_key(self, *, budget_usd: str, window: str, rpm: int) -> Key:
        data = self._admin("POST", "/__admin/keys", {"budget_usd": budget_usd, "window": window, "rpm": rpm,
                                                     "reply": self.reply_text})
        return Key(id=data["id"], secret=data["key"])

    def records(self, key: Key) -> list[Record]:
        rows = self._admin("GET", f"/__admin/records?key_id={key.id}")["records"]
        return [Record(status=r["status"], code=r.get("code"), prompt_tokens=r.get("prompt_tokens", 0),
                       completion_tokens=r.get("completion_tokens", 0), cost_nanos=r.get("cost_nanos", 0),
                       user_agent=r.get("user_agent", ""), transcript=r.get("transcript", [])) for r in rows]

    def usage(self, key: Key) -> dict[str, Any]:
        status, data, _ = http_json("GET", self.base_url + "/usage", token=key.secret)
        assert status == 200, (status, data)
        return data.get("data", data) if isinstance(data, dict) else data

    def prices(self) -> tuple[int, int]:
        status, data, _ = http_json("GET", self.base_url + "/models", token=self._any_key().secret)
        assert status == 200, data
        pricing = next(m for m in data["data"] if m["id"] == self.model)["pricing"]
        return usd_nanos(pricing["input_per_mtok"]), usd_nanos(pricing["output_per_mtok"])

    def _any_key(self) -> Key:
        if not hasattr(self, "_price_key"):
            self._price_key = self.new_key(budget_usd="0", window="5h", rpm=60)
        return self._price_key

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()


class TollgateTarget:
    """The real gateway: `python -m tollgate serve` in front of the repository's fake OpenAI upstream.

    The upstream answers `reply_text` to every prompt and counts tokens with a real tokenizer
    file that the gateway is configured with too, so reservations of OpenClaw's 25-49K character
    prompts stay tight. Keys come from plans created through the operator API; records are read
    from the gateway's own ledger (its SQLite file), transcripts from what the upstream received
    under the same X-Request-Id.
    """

    model = "tollgate-test"
    reply_text = "Done: tollgate answered."
    in_per_mtok, out_per_mtok = "0.30", "1.20"

    def __init__(self, tmp: Path) -> None:
        root = HERE.parents[1]
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        from tests.conftest import minilm_tokenizer
        from tests.support.processes import Gateway, Process, free_port

        tokenizer = minilm_tokenizer()
        port = free_port()
        self.upstream = Process(
            [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", str(port), "--name", "openclaw",
             "--tokenizer", tokenizer, "--reply", self.reply_text],
            f"http://127.0.0.1:{port}", tmp / "upstream.log").start("/v1/models")
        config = {
            "upstreams": [{"name": "fake", "base_url": self.upstream.url + "/v1", "timeout": 120}],
            "models": [{"id": self.model, "upstream": "fake", "input_per_mtok": self.in_per_mtok,
                        "output_per_mtok": self.out_per_mtok, "context": 200_000, "max_output": 2048,
                        "tokenizer": tokenizer, "capabilities": ["chat", "tools"]}],
        }
        self.gateway = Gateway(tmp, config)
        self.gateway.start("/health")
        self.base_url = self.gateway.url + "/v1"
        self.database = tmp / "tollgate.db"
        self._plans = 0

    def new_key(self, *, budget_usd: str, window: str, rpm: int) -> Key:
        self._plans += 1
        slug = f"openclaw-{self._plans}"
        r = self.gateway.admin("POST", "/admin/plans", {"slug": slug, "budgetPerWindow": budget_usd,
                                                        "window": window, "rpm": rpm, "tpm": 50_000_000})
        assert r.status_code == 201, r.text
        key = self.gateway.key(plan=slug, name=slug)
        return Key(id=key["key_id"], secret=key["sk"])

    def records(self, key: Key) -> list[Record]:
        import sqlite3

        # The gateway writes journaled records into SQLite in the background (every 100 ms); a read of its
        # request log hands over everything journaled first, so every answered request is in the file after it.
        caught_up = self.gateway.admin("GET", f"/admin/requests?keyId={key.id}&limit=1")
        assert caught_up.status_code == 200, caught_up.text
        with sqlite3.connect(self.database) as db:
            rows = db.execute("SELECT request_id, status, error, input_tokens, output_tokens, cost, client"
                              " FROM usage_records WHERE key_id = ? ORDER BY id", (key.id,)).fetchall()
        records = []
        for request_id, status, error, tokens_in, tokens_out, cost, client in rows:
            transcript: list[dict[str, Any]] = []
            if status == 200:
                found, body, _ = http_json("GET", f"{self.upstream.url}/_bodies/{request_id}")
                if found == 200:
                    transcript = [{"role": m.get("role"), "text": _text(m.get("content"))}
                                  for m in body.get("messages", []) if m.get("role") != "system"]
            records.append(Record(status=status, code=error if status != 200 else None, prompt_tokens=tokens_in,
                                  completion_tokens=tokens_out, cost_nanos=cost, user_agent=client or "",
                                  transcript=transcript))
        return records

    def usage(self, key: Key) -> dict[str, Any]:
        status, data, _ = http_json("GET", self.base_url + "/usage", token=key.secret)
        assert status == 200, (status, data)
        return data

    def prices(self) -> tuple[int, int]:
        return usd_nanos(self.in_per_mtok), usd_nanos(self.out_per_mtok)

    def stop(self) -> None:
        self.gateway.stop()
        self.upstream.stop()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def usd_nanos(text: str) -> int:
    from decimal import Decimal

    return int(Decimal(str(text)) * 1_000_000_000)


def start_target(tmp: Path) -> Target:
    kind = os.environ.get("TOLLGATE_OPENCLAW_TARGET", "tollgate")
    if kind == "tollgate":
        return TollgateTarget(tmp)
    if kind == "standin":
        return StandinTarget(tmp)
    raise RuntimeError(f"unknown TOLLGATE_OPENCLAW_TARGET {kind!r}: use 'tollgate' (default) or 'standin'")


def chat(target: Target, key: Key, text: str, max_tokens: int = 16) -> tuple[int, Any]:
    """One direct, non-streamed request with `key`, as any client would send it."""
    status, body, _ = http_json("POST", target.base_url + "/chat/completions", {
        "model": target.model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}],
    }, token=key.secret)
    return status, body


def error_code(body: Any) -> str | None:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def wait_until(check, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls `check()` until it returns something truthy; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
