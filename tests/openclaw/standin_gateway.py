#!/usr/bin/env python3
"""A small stand-in for tollgate's data plane, so the OpenClaw client tests run end to end today.

It speaks the same wire contract as tollgate (SPEC section 2): OpenAI chat completions with
and without streaming, exact nano-dollar costs, a dollar budget per UTC-aligned window that
answers the budget 429, per-minute request buckets that answer `rate_limit_exceeded`, and
`GET /v1/usage`. It is a separate process on purpose: OpenClaw must reach it over real HTTP.

Only the standard library is used. State is in memory; every request is recorded so a test
can compare what was billed with what the client saw.

Run: python standin_gateway.py --port 0 --admin-token T
The first line on stdout is `LISTENING http://127.0.0.1:<port>`.

Test-only admin routes (bearer = the admin token):
  POST /__admin/keys                 {"name", "budget_usd", "window", "rpm", "tpm", "reply"}
  POST /__admin/keys/<id>/budget     {"budget_usd"}  (change the limit of the key's budget)
  POST /__admin/keys/<id>/revoke
  GET  /__admin/records?key_id=<id>  every data-plane request for that key, oldest first
"""

from __future__ import annotations

import argparse
import json
import math
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

NANOS_PER_USD = 1_000_000_000
MODEL_ID = "tollgate-test"
# Prices in nano-dollars per million tokens ($0.50 in, $1.50 out).
INPUT_PER_MTOK = 500_000_000
OUTPUT_PER_MTOK = 1_500_000_000
DEFAULT_MAX_OUTPUT = 4096
DAY = 86400


def usd_to_nanos(text: str) -> int:
    value = Decimal(str(text)) * NANOS_PER_USD
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} has more than 9 decimals")
    return int(value)


def usd(nanos: int) -> str:
    return format(Decimal(nanos).scaleb(-9).normalize(), "f")


def request_cost(input_tokens: int, output_tokens: int) -> int:
    """Both parts summed, rounded up once to a whole nano-dollar (as tollgate.domain.money does)."""
    numerator = input_tokens * INPUT_PER_MTOK + output_tokens * OUTPUT_PER_MTOK
    return -((-numerator) // 1_000_000)


def parse_duration(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": DAY}[m.group(2)]


def window_bounds(now: float, length: int) -> tuple[int, int]:
    """UTC-aligned: 00:00 UTC + k x length each day; the day's last window ends at midnight."""
    t = int(now)
    day = t - t % DAY
    start = day + ((t - day) // length) * length
    return start, min(start + length, day + DAY)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def count_tokens(obj: Any) -> int:
    """A stable estimate (4 characters a token) standing in for a tokenizer."""
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), sort_keys=True)
    return max(1, math.ceil(len(text) / 4))


@dataclass
class Key:
    id: str
    secret: str
    name: str
    limit: int
    window: int
    window_text: str
    rpm: int
    reply: str
    created_at: float
    revoked: bool = False
    spent: dict[int, int] = field(default_factory=dict)  # window start -> nanos
    bucket: float = 0.0
    bucket_stamp: float = 0.0


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, Key] = {}
        self.by_secret: dict[str, Key] = {}
        self.records: list[dict[str, Any]] = []

    def add_key(self, body: dict[str, Any]) -> Key:
        window_text = str(body.get("window", "5h"))
        rpm = int(body.get("rpm", 600))
        key = Key(
            id="key_" + secrets.token_hex(6), secret="sk_standin_" + secrets.token_hex(16),
            name=str(body.get("name", "test")), limit=usd_to_nanos(str(body.get("budget_usd", "1"))),
            window=parse_duration(window_text), window_text=window_text, rpm=rpm,
            reply=str(body.get("reply", "Done: the tollgate stand-in answered.")),
            created_at=time.time(), bucket=float(rpm), bucket_stamp=time.monotonic(),
        )
        with self.lock:
            self.keys[key.id] = key
            self.by_secret[key.secret] = key
        return key


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, type_: str,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.type = status, code, message, type_
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": None, "code": self.code, **self.extra}}


def budget_error(key: Key, now: float) -> ApiError:
    _, end = window_bounds(now, key.window)
    reset = iso(end)
    return ApiError(
        429, "budget_exceeded",
        f"budget exceeded: usage limit reached for this {key.window_text} window; resets at {reset}",
        "budget_exceeded",
        headers={"Retry-After": str(max(1, math.ceil(end - now))), "x-should-retry": "false"},
        extra={"reset_at": reset},
    )


def take_request_slot(key: Key) -> None:
    """The per-minute request bucket: capacity rpm, refilled over a minute."""
    now = time.monotonic()
    key.bucket = min(float(key.rpm), key.bucket + (now - key.bucket_stamp) * key.rpm / 60.0)
    key.bucket_stamp = now
    if key.bucket < 1.0:
        wait = max(1, math.ceil((1.0 - key.bucket) * 60.0 / key.rpm))
        raise ApiError(429, "rate_limit_exceeded",
                       f"rate limit exceeded: {key.rpm} requests per minute; retry in {wait}s",
                       "rate_limit_error", headers={"Retry-After": str(wait)})
    key.bucket -= 1.0


def transcript(messages: list[Any]) -> list[dict[str, Any]]:
    """The conversation as recorded: every non-system message's role and text."""
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") == "system":
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append({"role": m.get("role"), "text": content if isinstance(content, str) else ""})
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "StandinServer"

    def log_message(self, fmt: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write("[standin] " + (fmt % args) + "\n")

    # -- plumbing ---------------------------------------------------------------------------
    def _body(self) -> Any:
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "invalid_json", "request body is not valid JSON", "invalid_request_error") from None

    def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _bearer(self) -> str:
        auth = self.headers.get("authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else ""

    def _key(self) -> Key:
        key = self.server.state.by_secret.get(self._bearer())
        if key is None:
            raise ApiError(401, "invalid_api_key", "invalid API key", "authentication_error")
        if key.revoked:
            raise ApiError(403, "key_revoked", "this API key has been revoked", "permission_error")
        return key

    def _dispatch(self, method: str) -> None:
        path = urlparse(self.path).path.rstrip("/")
        try:
            if path.startswith("/__admin/"):
                if self._bearer() != self.server.admin_token:
                    raise ApiError(401, "invalid_admin_token", "admin token required", "authentication_error")
                return self._admin(method, path)
            if method == "POST" and path == "/v1/chat/completions":
                return self._chat()
            if method == "GET" and path == "/v1/usage":
                return self._usage()
            if method == "GET" and path == "/v1/models":
                self._key()
                return self._send(200, {"object": "list", "data": [{
                    "id": MODEL_ID, "object": "model", "owned_by": "tollgate-standin",
                    "pricing": {"input_per_mtok": usd(INPUT_PER_MTOK), "output_per_mtok": usd(OUTPUT_PER_MTOK)}}]})
            raise ApiError(404, "not_found", f"no route for {method} {path}", "not_found_error")
        except ApiError as e:
            self._send(e.status, e.body(), e.headers)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # -- data plane -------------------------------------------------------------------------
    def _usage(self) -> None:
        key = self._key()
        now = time.time()
        with self.server.state.lock:
            start, end = window_bounds(now, key.window)
            spent = key.spent.get(start, 0)
        self._send(200, {
            "budget": {"spent": usd(spent), "limit": usd(key.limit), "remaining": usd(max(0, key.limit - spent)),
                       "duration": key.window_text, "resets_at": iso(end), "spent_nanos": spent,
                       "limit_nanos": key.limit, "remaining_nanos": max(0, key.limit - spent)},
            "rate_limits": {"rpm": key.rpm, "tpm": None},
            "plan": {"slug": "standin", "status": "active", "expires_at": None},
            "credits": {"balance": "0.00"},
            "key": {"name": key.name, "type": "subscription", "created_at": iso(key.created_at)},
        })

    def _chat(self) -> None:
        state = self.server.state
        key = self._key()
        record: dict[str, Any] = {"key_id": key.id, "ts": time.time(),
                                  "user_agent": self.headers.get("user-agent", "")}
        try:
            body = self._body()
            messages = body.get("messages") if isinstance(body, dict) else None
            if not isinstance(messages, list) or not messages:
                raise ApiError(400, "invalid_request", "messages must be a non-empty list", "invalid_request_error")
            record.update(stream=bool(body.get("stream")), model=body.get("model"),
                          transcript=transcript(messages))
            prompt_tokens = count_tokens({"messages": messages, "tools": body.get("tools")})
            asked = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_OUTPUT
            now = time.time()
            with state.lock:
                take_request_slot(key)
                start, _ = window_bounds(now, key.window)
                remaining = key.limit - key.spent.get(start, 0)
                if request_cost(prompt_tokens, 1) > remaining:
                    raise budget_error(key, now)
                affordable = int(asked)
                while affordable > 1 and request_cost(prompt_tokens, affordable) > remaining:
                    affordable //= 2
                reply = key.reply
                completion_tokens = min(count_tokens(reply), affordable)
                reply = reply[: completion_tokens * 4]
                cost = request_cost(prompt_tokens, completion_tokens)
                key.spent[start] = key.spent.get(start, 0) + cost
                spent_now = key.spent[start]
                seq = len(state.records) + 1
                record.update(status=200, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                              cost_nanos=cost, window_start=start, id=f"chatcmpl-standin{seq}")
                state.records.append(record)
        except ApiError as e:
            record.update(status=e.status, code=e.code)
            with state.lock:
                record["id"] = f"refused{len(state.records) + 1}"
                state.records.append(record)
            raise
        _, end = window_bounds(now, key.window)
        headers = {"x-budget-limit": usd(key.limit), "x-budget-remaining": usd(max(0, key.limit - spent_now)),
                   "x-budget-reset": iso(end), "x-request-cost": usd(cost)}
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        base = {"id": record["id"], "created": int(now), "model": body.get("model") or MODEL_ID}
        if not body.get("stream"):
            return self._send(200, {**base, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": usage}, headers)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        chunk = {**base, "object": "chat.completion.chunk"}

        def event(obj: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

        event({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        half = len(reply) // 2
        for piece in (reply[:half], reply[half:]):
            event({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        event({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            event({**chunk, "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    # -- test-only admin --------------------------------------------------------------------
    def _admin(self, method: str, path: str) -> None:
        state = self.server.state
        parts = path.split("/")[2:]
        if method == "POST" and parts == ["keys"]:
            key = state.add_key(self._body())
            return self._send(200, {"id": key.id, "key": key.secret})
        if method == "POST" and len(parts) == 3 and parts[0] == "keys" and parts[1] in state.keys:
            key = state.keys[parts[1]]
            body = self._body()
            with state.lock:
                if parts[2] == "budget":
                    key.limit = usd_to_nanos(str(body["budget_usd"]))
                elif parts[2] == "revoke":
                    key.revoked = True
                else:
                    raise ApiError(404, "not_found", path, "not_found_error")
            return self._send(200, {"ok": True})
        if method == "GET" and parts == ["records"]:
            key_id = (parse_qs(urlparse(self.path).query).get("key_id") or [None])[0]
            with state.lock:
                rows = [r for r in state.records if key_id is None or r["key_id"] == key_id]
            return self._send(200, {"records": rows})
        raise ApiError(404, "not_found", f"no admin route {method} {path}", "not_found_error")


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], admin_token: str, verbose: bool) -> None:
        super().__init__(addr, Handler)
        self.state = State()
        self.admin_token = admin_token
        self.verbose = verbose


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--admin-token", required=True)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    server = StandinServer((args.host, args.port), args.admin_token, args.verbose)
    print(f"LISTENING http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
