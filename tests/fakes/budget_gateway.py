#!/usr/bin/env python3
"""A small, real HTTP stand-in for tollgate's data plane, for the agent toolkit's tests.

It speaks the wire contract of SPEC sections 2 and 3 that `tollgate.agent` relies on:
`POST /v1/chat/completions` with tool calls, a dollar budget per UTC-aligned window of a
few seconds, the exact budget 429 (`budget_exceeded`, `reset_at`, `Retry-After`,
`x-should-retry: false`), `rate_limit_exceeded`, `insufficient_credits`, 401/403, the
`x-budget-*` / `x-request-cost` headers, and `GET /v1/usage` (in the `{success, data}`
envelope). Standard library only; state in memory.

The model is scripted from the request (see `scripted_reply`), so the same script can be
served by a fake upstream behind the real gateway.

Keys need no admin call; the prefix says what the key is:
  sk_budget_*   a subscription key with the configured budget and window
  sk_rpm_*      the same, limited to 2 requests per 1-second bucket (a per-minute limit, sped
                up: answers rate_limit_exceeded with Retry-After: 1)
  sk_revoked_*  403 key_revoked          sk_expired_*  403 subscription_expired
  sk_credit_*   a credit key with $0 (429 insufficient_credits)
  anything else 401 invalid_api_key
A key containing `_bare` gets `/v1/usage` without the envelope.

Run: python budget_gateway.py --port 0 --window 1 --budget-usd 0.006
The first line on stdout is `LISTENING http://127.0.0.1:<port>/v1`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NANOS = 1_000_000_000
SCRIPT = re.compile(r"\[\[script:([\w,.-]+)\]\]")
# Model -> (input, output) USD per million tokens.
MODELS = {"tg-scripted": (Decimal("5"), Decimal("15")), "tg-scripted-mini": (Decimal("0.5"), Decimal("1.5"))}
RPM_LIMIT = 2


def scripted_reply(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The scripted model: `[[script:a,b]]` in a user message means "call tool a, then tool b
    (arguments `{"n": 1}`, `{"n": 2}`), then answer `done: <every tool result in order, joined
    by ' | '>`". Deterministic and driven only by the transcript (the last user message with a
    script starts it), so a lost or reordered transcript shows in the answer."""
    start, plan = None, None
    for index, message in enumerate(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            found = SCRIPT.search(message["content"])
            if found:
                start, plan = index, [name for name in found.group(1).split(",") if name]
    if plan is None:
        return {"role": "assistant", "content": "ok"}
    results = [str(m.get("content")) for m in messages[start + 1:] if m.get("role") == "tool"]
    if len(results) < len(plan):
        k = len(results)
        call = {"id": f"call_{k + 1}", "type": "function",
                "function": {"name": plan[k], "arguments": json.dumps({"n": k + 1})}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"role": "assistant", "content": "done: " + " | ".join(results)}


def tokens(value: Any) -> int:
    return max(1, math.ceil(len(json.dumps(value, separators=(",", ":"))) / 4))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def usd(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9).normalize() if nanos else Decimal(0)


def dumps_money(value: Any) -> bytes:
    """JSON with Decimal money written as exact JSON numbers."""
    marks: dict[str, str] = {}

    def default(obj: Any) -> str:
        if isinstance(obj, Decimal):
            mark = f"@@num{len(marks)}@@"
            marks[mark] = format(obj, "f")
            return mark
        raise TypeError(type(obj))

    text = json.dumps(value, default=default)
    for mark, number in marks.items():
        text = text.replace(f'"{mark}"', number)
    return text.encode()


class Ledger:
    """Per-key spend in the current window, and per-key request buckets. One lock for all."""

    def __init__(self, window: float, budget_nanos: int) -> None:
        self.window = window
        self.budget = budget_nanos
        self.lock = threading.Lock()
        self.spent: dict[str, tuple[int, int]] = {}  # key -> (window index, nanos)
        self.requests: dict[str, tuple[int, int]] = {}  # key -> (1-second bucket index, count)

    def bounds(self, now: float) -> tuple[int, float]:
        index = int(now // self.window)
        return index, (index + 1) * self.window

    def spent_now(self, key: str, now: float) -> int:
        index, _ = self.bounds(now)
        window, nanos = self.spent.get(key, (index, 0))
        return nanos if window == index else 0

    def charge(self, key: str, now: float, nanos: int) -> None:
        index, _ = self.bounds(now)
        self.spent[key] = (index, self.spent_now(key, now) + nanos)

    def count_request(self, key: str, now: float) -> int:
        bucket = int(now)
        index, count = self.requests.get(key, (bucket, 0))
        count = count + 1 if index == bucket else 1
        self.requests[key] = (bucket, count)
        return count


def make_handler(ledger: Ledger) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = dumps_money(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def error(self, status: int, code: str, message: str, *, type_: str | None = None,
                  headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
            body = {"error": {"message": message, "type": type_ or code, "param": None, "code": code, **(extra or {})}}
            self.send_json(status, body, headers)

        def key(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            key = auth[7:].strip() if auth.startswith("Bearer ") else ""
            if key.startswith(("sk_revoked_", "sk_expired_")):
                code = "key_revoked" if key.startswith("sk_revoked_") else "subscription_expired"
                self.error(403, code, f"this API key is no longer valid ({code})", type_="permission_error")
                return None
            if not key.startswith(("sk_budget_", "sk_rpm_", "sk_credit_")):
                self.error(401, "invalid_api_key", "invalid API key", type_="authentication_error")
                return None
            return key

        def budget_refusal(self, now: float) -> None:
            _, reset = ledger.bounds(now)
            reset_text = iso(reset)
            seconds = max(1, math.ceil(reset - now))
            message = (f"budget exceeded: usage limit reached for this {ledger.window:g}s window; "
                       f"resets at {reset_text}")
            self.error(429, "budget_exceeded", message, extra={"reset_at": reset_text},
                       headers={"Retry-After": str(seconds), "x-should-retry": "false"})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/health":
                self.send_json(200, {"ok": True})
                return
            key = self.key()
            if key is None:
                return
            if self.path.rstrip("/") == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})
                return
            if self.path.rstrip("/") != "/v1/usage":
                self.error(404, "not_found", "no such route")
                return
            now = time.time()
            with ledger.lock:
                spent = ledger.spent_now(key, now)
            _, reset = ledger.bounds(now)
            credit = key.startswith("sk_credit_")
            data = {
                "budget": {"spent": usd(spent), "limit": None if credit else usd(ledger.budget),
                           "remaining": None if credit else usd(max(0, ledger.budget - spent)),
                           "duration": f"{ledger.window:g}s", "resets_at": iso(reset)},
                "rate_limits": {"rpm": RPM_LIMIT if key.startswith("sk_rpm_") else 60, "tpm": 100000},
                "plan": {"slug": None if credit else "test", "status": "active", "expires_at": iso(now + 86400)},
                "credits": {"balance": Decimal("0")},
                "key": {"name": "test", "type": "credit" if credit else "subscription", "created_at": iso(now)},
            }
            self.send_json(200, data if "_bare" in key else {"success": True, "data": data})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            key = self.key()
            if key is None:
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self.error(404, "not_found", "no such route")
                return
            try:
                request = json.loads(raw)
                messages = request["messages"]
                model = request["model"]
            except (ValueError, KeyError, TypeError):
                self.error(400, "invalid_request", "body must be JSON with model and messages",
                           type_="invalid_request_error")
                return
            if model not in MODELS:
                self.error(404, "model_not_found", f"model {model!r} does not exist", type_="invalid_request_error")
                return
            if key.startswith("sk_credit_"):
                self.error(429, "insufficient_credits", "insufficient credits: top up to continue")
                return
            self.complete(key, request, messages, model)

        def complete(self, key: str, request: dict[str, Any], messages: list[Any], model: str) -> None:
            price_in, price_out = MODELS[model]
            reply = scripted_reply(messages)
            prompt = tokens([messages, request.get("tools") or []])
            completion = tokens(reply)
            cost = int((prompt * price_in + completion * price_out) * NANOS / 1_000_000)
            now = time.time()
            with ledger.lock:
                if key.startswith("sk_rpm_") and ledger.count_request(key, now) > RPM_LIMIT:
                    self.error(429, "rate_limit_exceeded", "rate limit reached: too many requests per minute",
                               headers={"Retry-After": "1"})
                    return
                spent = ledger.spent_now(key, now)
                if spent + cost > ledger.budget:
                    self.budget_refusal(now)
                    return
                ledger.charge(key, now, cost)
                remaining = ledger.budget - spent - cost
            _, reset = ledger.bounds(now)
            body = {
                "id": f"chatcmpl-{int(now * 1000)}", "object": "chat.completion", "created": int(now), "model": model,
                "choices": [{"index": 0, "message": reply,
                             "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion},
            }
            self.send_json(200, body, {
                "x-budget-limit": format(usd(ledger.budget), "f"), "x-budget-remaining": format(usd(remaining), "f"),
                "x-budget-reset": iso(reset), "x-request-cost": format(usd(cost), "f"),
            })

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--window", type=float, default=1.0, help="budget window in seconds")
    parser.add_argument("--budget-usd", default="0.006", help="budget per window and key, USD")
    args = parser.parse_args(argv)
    ledger = Ledger(args.window, int(Decimal(args.budget_usd) * NANOS))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(ledger))
    server.daemon_threads = True
    print(f"LISTENING http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
