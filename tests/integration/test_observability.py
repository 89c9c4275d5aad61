"""Metrics, the request log, request ids and CORS over HTTP, on a real gateway (issue 15).

`/metrics` is read with `prometheus_client`'s own parser and held to the requests this test made:
successes, a fallback, an upstream failure, a budget 429, a refusal before the flow. The request
log is the gateway's own file; every number it and the metrics show is checked against what the
clients were told (the cost headers, the usage blocks). After real traffic no secret (an API key, a
management key, the operator token, the upstream's own key) is in any log line, metric or request log.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.metrics import named, samples, value
from tests.support.processes import ROOT, Gateway


def chat(gw: Gateway, sk: str, content: str, model: str = "fake-chat", max_tokens: int = 8,
         headers: dict | None = None, path: str = "/v1/chat/completions") -> httpx.Response:
    return httpx.post(gw.url + path, timeout=30, headers={"Authorization": f"Bearer {sk}", **(headers or {})},
                      json={"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": content}]})


def stream(gw: Gateway, sk: str, content: str) -> tuple[httpx.Headers, dict]:
    """A streamed chat; its headers and the usage of its last chunk."""
    body = {"model": "fake-chat", "max_tokens": 8, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": content}]}
    usage = None
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {sk}"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage") or usage
        return r.headers, usage


def nanos(usd: str) -> int:
    return int(Decimal(usd) * 10**9)


def scrape(gw: Gateway) -> dict:
    r = gw.admin("GET", "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    return samples(r.text)


def log_lines(path: Path, wanted: set[str]) -> list[dict]:
    """The request log's lines, once every request id in `wanted` is in it (written within a flush)."""
    for _ in range(200):  # bounded: the log is flushed every 0.25 s
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if wanted <= {line["request_id"] for line in lines}:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"request ids missing from the log: {wanted}")


@pytest.fixture
def observed(tmp_path, upstream_factory, gateway_factory):
    good, bad = upstream_factory(), upstream_factory("bad", fail_status=500)
    config = fake_config(good.url)
    config["upstreams"].append({"name": "bad", "base_url": bad.url + "/v1", "timeout": 30})
    config["models"].append({"id": "flaky", "upstream": "bad", "input_per_mtok": "1.00", "output_per_mtok": "2.00",
                             "fallbacks": ["fake-chat"]})
    log = tmp_path / "requests.jsonl"
    config["logging"] = {"requests": str(log)}
    return gateway_factory(config), log


def test_metrics_and_the_request_log_count_every_request(observed):
    gw, log = observed
    std, tiny = gw.key("standard", name="std"), gw.key("tiny", name="tiny")
    costs, tokens_in, tokens_out = [], [], []

    def billed(r: httpx.Response) -> None:
        assert r.status_code == 200, r.text
        costs.append(int(r.headers["x-request-cost-nanos"]))
        tokens_in.append(r.json()["usage"]["prompt_tokens"])
        tokens_out.append(r.json()["usage"]["completion_tokens"])

    first = chat(gw, std["sk"], "hello there [[reply:3]]")
    billed(first)
    headers, usage = stream(gw, std["sk"], "stream this [[reply:4]]")
    costs.append(usage["cost_nanos"])
    tokens_in.append(usage["prompt_tokens"])
    tokens_out.append(usage["completion_tokens"])
    fell_back = chat(gw, std["sk"], "[[reply:2]]", model="flaky")
    assert fell_back.headers["x-tollgate-fallbacks"] == "1" and fell_back.headers["x-tollgate-model"] == "fake-chat"
    billed(fell_back)
    failed = chat(gw, std["sk"], "[[status:500]]")
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "upstream_unavailable"
    unknown = chat(gw, "sk_not_a_key", "hello there")
    assert unknown.status_code == 401 and unknown.headers["x-request-id"]
    spent = None
    for _ in range(50):  # the tiny plan's $0.001 lasts a few of these
        r = chat(gw, tiny["sk"], "the cat " * 50 + "[[reply:100]]", max_tokens=100)
        if r.status_code != 200:
            spent = r
            break
        billed(r)
    assert spent is not None and spent.status_code == 429, spent and spent.text
    tiny_successes = len(costs) - 3

    text = gw.admin("GET", "/metrics").text
    m = samples(text)
    documented = (ROOT / "docs" / "metrics.md").read_text()
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE tollgate_")}
    assert len(families) > 30 and sorted(f for f in families if f"`{f}`" not in documented) == []
    ok = 3 + tiny_successes
    req = "tollgate_requests_total"
    assert value(m, req, model="fake-chat", endpoint="chat", route="direct", status="200") == ok
    assert value(m, req, model="fake-chat", endpoint="chat", route="direct", status="502") == 1
    assert value(m, req, model="fake-chat", endpoint="chat", route="direct", status="429") == 1
    assert sum(named(m, req).values()) == ok + 2  # the 401 never reached the flow
    assert named(m, "tollgate_refusals_total") == {
        frozenset({("reason", "budget_exceeded")}): 1, frozenset({("reason", "upstream_unavailable")}): 1,
        frozenset({("reason", "invalid_api_key")}): 1}
    assert value(m, "tollgate_cost_nanodollars_total", model="fake-chat") == sum(costs)
    assert value(m, "tollgate_tokens_total", model="fake-chat", direction="input") == sum(tokens_in)
    assert value(m, "tollgate_tokens_total", model="fake-chat", direction="output") == sum(tokens_out)
    duration = "tollgate_request_duration_seconds_count"
    assert value(m, duration, model="fake-chat", endpoint="chat", route="direct", status_class="2xx") == ok
    assert value(m, duration, model="fake-chat", endpoint="chat", route="direct", status_class="5xx") == 1
    assert value(m, "tollgate_time_to_first_token_seconds_count", model="fake-chat", endpoint="chat",
                 route="direct") == 1
    assert value(m, "tollgate_fallbacks_total", model="fake-chat") == 1
    assert value(m, "tollgate_upstream_errors_total", upstream="bad", kind="http_500") == 1
    assert value(m, "tollgate_upstream_errors_total", upstream="fake", kind="http_500") == 1
    assert value(m, "tollgate_upstream_fallbacks_total", upstream="bad") == 1
    assert value(m, "tollgate_upstream_fallbacks_total", upstream="fake") == 0
    assert value(m, "tollgate_upstream_requests_total", upstream="fake") == ok
    assert value(m, "tollgate_upstream_requests_total", upstream="bad") == 0
    assert value(m, "tollgate_upstream_consecutive_errors", upstream="bad") == 1
    assert value(m, "tollgate_upstream_consecutive_errors", upstream="fake") == 0  # answered since its failure
    assert value(m, "tollgate_upstream_healthy", upstream="bad") == 1  # one failure is not three
    assert value(m, "tollgate_upstream_last_error_timestamp_seconds", upstream="bad") > 0
    assert value(m, "tollgate_reservations_open") == 0 and value(m, "tollgate_requests_in_flight") == 0
    assert value(m, "tollgate_ledger_backlog_refusals_total") == 0
    assert not named(m, "tollgate_key_budget_remaining_nanodollars")  # per-key gauges are off by default
    assert value(m, "tollgate_cache_capacity", cache="key_contexts") == 200_000

    traffic = gw.admin("GET", "/admin/metrics/traffic").json()
    assert traffic["success"] is True
    data = traffic["data"]
    assert data["refusals"] == {"budget_exceeded": 1, "invalid_api_key": 1, "upstream_unavailable": 1}
    assert (data["reservationsOpen"], data["requestsInFlight"]) == (0, 0)
    [model] = data["models"]
    assert model == {"model": "fake-chat", "requests": ok + 2, "inputTokens": sum(tokens_in),
                     "outputTokens": sum(tokens_out), "costNanos": sum(costs), "cost": model["cost"]}
    assert int(round(float(model["cost"]) * 1e9)) == sum(costs)
    ups = {u["name"]: u for u in data["upstreams"]}
    assert set(ups) == {"fake", "bad"}
    assert (ups["bad"]["requests"], ups["bad"]["errors"], ups["bad"]["fallbacks"]) == (0, 1, 1)
    assert ups["bad"]["p50Ms"] is None and ups["bad"]["healthy"] is True and "500" in ups["bad"]["lastError"]
    assert (ups["fake"]["requests"], ups["fake"]["errors"]) == (ok, 1)
    assert 0 < ups["fake"]["p50Ms"] <= ups["fake"]["p99Ms"]

    ids = {first.headers["x-request-id"], headers["x-request-id"], spent.headers["x-request-id"],
           unknown.headers["x-request-id"], failed.headers["x-request-id"]}
    lines = log_lines(log, ids)
    by_id = {line["request_id"]: line for line in lines}
    line = by_id[first.headers["x-request-id"]]
    assert (line["key_id"], line["account_id"], line["model"], line["endpoint"], line["status"]) == (
        std["key_id"], std["account"], "fake-chat", "chat", 200)
    assert (line["cost_nanos"], line["input_tokens"], line["upstream"], line["reason"]) == (costs[0], tokens_in[0],
                                                                                          "fake", None)
    assert line["latency_ms"] > 0 and line["time"].endswith("Z")
    assert by_id[headers["x-request-id"]]["ttft_ms"] > 0
    assert (by_id[spent.headers["x-request-id"]]["status"], by_id[spent.headers["x-request-id"]]["reason"]) == (
        429, "budget_exceeded")
    assert by_id[failed.headers["x-request-id"]]["reason"] == "upstream_unavailable"
    edge = by_id[unknown.headers["x-request-id"]]
    assert (edge["path"], edge["status"], edge["reason"]) == ("/v1/chat/completions", 401, "invalid_api_key")
    flow_lines = [line for line in lines if "key_id" in line]
    assert len(flow_lines) == ok + 2
    text = log.read_text()
    for secret in (std["sk"], std["mk"], tiny["sk"], gw.admin_token, "hello there", "stream this"):
        assert secret not in text


def test_every_api_echoes_the_request_id_on_its_refusals(gateway_factory, fake_upstream):
    gw = gateway_factory(fake_config(fake_upstream.url))
    tiny = gw.key("tiny")
    for _ in range(100):  # spend the key's budget to the last nano a short prompt could use
        if chat(gw, tiny["sk"], "hi", max_tokens=100).status_code != 200:
            break
    longer = "the cat " * 10  # dearer than "hi": surely refused now
    anthropic = httpx.post(gw.url + "/anthropic/v1/messages", timeout=30, headers={"x-api-key": tiny["sk"]},
                           json={"model": "fake-chat", "max_tokens": 8, "messages": [{"role": "user", "content": longer}]})
    responses = httpx.post(gw.url + "/v1/responses", timeout=30, headers={"Authorization": f"Bearer {tiny['sk']}"},
                           json={"model": "fake-chat", "input": longer, "max_output_tokens": 8})
    openai_ = chat(gw, tiny["sk"], longer)
    management = gw.manage("GET", "/api/keys", "mk_unknown")
    operator = gw.admin("GET", "/admin/accounts", token="wrong-token-" + "x" * 40)
    missing = httpx.get(gw.url + "/v1/nothing-here", timeout=30)
    refused = [(anthropic, 429), (responses, 429), (openai_, 429), (management, 401), (operator, 401), (missing, 404)]
    for response, status in refused:
        assert response.status_code == status, response.text
    seen = [r.headers.get("x-request-id") for r, _ in refused]
    assert all(seen) and len(set(seen)) == len(seen)


def test_per_key_budget_gauges_are_capped_to_the_most_recent_keys(gateway_factory, fake_upstream):
    gw = gateway_factory({**fake_config(fake_upstream.url), "metrics": {"per_key": True, "per_key_max": 2}})
    keys = [gw.key("standard", name=f"k{n}") for n in range(3)]
    answers = [chat(gw, key["sk"], "hello [[reply:2]]") for key in keys]
    assert [r.status_code for r in answers] == [200, 200, 200]
    before = time.time()
    m = scrape(gw)
    after = time.time()
    remaining = named(m, "tollgate_key_budget_remaining_nanodollars")
    assert {dict(labels)["key_id"] for labels in remaining} == {keys[1]["key_id"], keys[2]["key_id"]}
    assert value(m, "tollgate_key_budget_keys") == 2
    for key, answer in zip(keys[1:], answers[1:]):
        # Each key has its own subscription: what its last answer's budget headers said is still true.
        labels = {"key_id": key["key_id"], "pool": "subscription"}
        assert value(m, "tollgate_key_budget_remaining_nanodollars", **labels) == nanos(
            answer.headers["x-budget-remaining"])
        assert value(m, "tollgate_key_budget_limit_nanodollars", **labels) == nanos(answer.headers["x-budget-limit"])
        resets_at = datetime.fromisoformat(answer.headers["x-budget-reset"].replace("Z", "+00:00")).timestamp()
        seconds = value(m, "tollgate_key_budget_reset_seconds", **labels)
        assert 0 < seconds <= 5 * 3600 and resets_at - after - 0.01 <= seconds <= resets_at - before + 0.01


def test_cors_answers_preflights_and_exposes_the_budget_headers(gateway_factory, fake_upstream):
    origin = "https://app.example.com"
    gw = gateway_factory(fake_config(fake_upstream.url, cors_origins=[origin]))
    key = gw.key("standard")
    pre = httpx.options(gw.url + "/v1/chat/completions", timeout=30, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == origin and pre.headers["vary"] == "Origin"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-os"
    assert pre.headers["access-control-max-age"] == "600" and "access-control-allow-credentials" not in pre.headers
    r = chat(gw, key["sk"], "hello [[reply:2]]", headers={"Origin": origin})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "x-budget-remaining", "x-budget-reset", "x-request-cost", "retry-after"} <= exposed
    denied = chat(gw, "sk_wrong", "hi", headers={"Origin": origin})
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == origin
    other = chat(gw, key["sk"], "hi [[reply:1]]", headers={"Origin": "https://elsewhere.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    assert httpx.options(gw.url + "/v1/chat/completions", timeout=30, headers={
        "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}).status_code == 405


def test_without_cors_origins_there_are_no_cors_headers(gateway_factory, fake_upstream):
    gw = gateway_factory(fake_config(fake_upstream.url))
    pre = httpx.options(gw.url + "/v1/models", timeout=30, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 405 and "access-control-allow-origin" not in pre.headers
    assert gw.admin("GET", "/metrics", token="sk_nope").status_code == 401  # the operator token, not a key
    assert httpx.get(gw.url + "/metrics", timeout=30).status_code == 401


def test_the_request_log_can_go_to_standard_error(gateway_factory, fake_upstream):
    gw = gateway_factory({**fake_config(fake_upstream.url), "logging": {"requests": "stderr"}})
    key = gw.key("standard")
    r = chat(gw, key["sk"], "hello [[reply:2]]")
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    for _ in range(200):  # bounded: flushed every 0.25 s
        found = [json.loads(line) for line in gw.log.read_text().splitlines()
                 if line.startswith("{") and request_id in line]
        if found:
            break
        time.sleep(0.05)
    [line] = found
    assert (line["key_id"], line["status"], line["cost_nanos"]) == (key["key_id"], 200,
                                                                   int(r.headers["x-request-cost-nanos"]))
    assert key["sk"] not in gw.log.read_text()


def fragments(secret: str, size: int = 16) -> set[str]:
    """Every `size`-character piece of `secret`: none may show, though its display prefix (10) may."""
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def test_no_secret_reaches_a_log_line_a_metric_or_the_request_log(tmp_path, upstream_factory, gateway_factory):
    upstream = upstream_factory()
    upstream_key = "upk-" + secrets.token_urlsafe(32)
    config = fake_config(upstream.url)
    config["upstreams"][0]["api_key_env"] = "TOLLGATE_TEST_UPSTREAM_KEY"
    log = tmp_path / "requests.jsonl"
    config["logging"] = {"requests": str(log)}
    config["metrics"] = {"per_key": True}
    gw = gateway_factory(config, env={"TOLLGATE_TEST_UPSTREAM_KEY": upstream_key})
    std, tiny = gw.key("standard", name="std"), gw.key("tiny", name="tiny")
    answers: list[httpx.Response] = []

    def sent(r: httpx.Response, status: int) -> httpx.Response:
        assert r.status_code == status, r.text
        answers.append(r)
        return r

    # Successes (one streamed), an upstream failure, an upstream refusal that quotes the key it was sent
    # (as some providers answer a wrong key), a budget 429, and refusals at the edge of secrets that are
    # real but in the wrong place, or one character off.
    sent(chat(gw, std["sk"], "hello there [[reply:3]]"), 200)
    headers, _ = stream(gw, std["sk"], "stream this [[reply:4]]")
    sent(chat(gw, std["sk"], "[[status:500]]"), 502)
    quoted = sent(chat(gw, std["sk"], "[[auth-error:401]]"), 502)  # the gateway's credentials, not the client's
    assert quoted.json()["error"]["code"] == "upstream_error"
    assert "Incorrect API key provided: Bearer [redacted]" in quoted.json()["error"]["message"]
    for _ in range(50):  # bounded: the tiny plan's $0.001 lasts a few of these
        r = chat(gw, tiny["sk"], "the cat " * 50 + "[[reply:100]]", max_tokens=100)
        if r.status_code != 200:
            break
    sent(r, 429)
    near_miss = std["sk"][:-1] + ("A" if std["sk"][-1] != "A" else "B")
    for wrong in (std["mk"], gw.admin_token, near_miss, upstream_key):
        sent(chat(gw, wrong, "hello"), 401)
    sent(httpx.post(gw.url + "/anthropic/v1/messages", timeout=30, headers={"x-api-key": near_miss},
                    json={"model": "fake-chat", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}), 401)
    sent(gw.manage("GET", "/api/keys", std["sk"]), 401)
    sent(gw.admin("GET", "/admin/accounts", token=std["mk"]), 401)
    sent(gw.admin("GET", "/admin/accounts", token=gw.admin_token[:-1] + "x"), 401)
    rotated = gw.manage("POST", f"/api/keys/{std['key_id']}/rotate", std["mk"], {"graceSeconds": 60})
    assert rotated.status_code == 200, rotated.text
    new_sk = rotated.json()["data"]["apiKey"]
    sent(chat(gw, new_sk, "rotated [[reply:2]]"), 200)
    sent(chat(gw, std["sk"], "still in its grace [[reply:2]]"), 200)

    # The upstream was sent its key (so there was one to leak), and only ever that.
    assert httpx.get(upstream.url + "/_stats", timeout=30).json()["authorizations"] == [f"Bearer {upstream_key}"]

    ids = {r.headers["x-request-id"] for r in answers} | {headers["x-request-id"]}
    log_lines(log, ids)  # every request is in the file: nothing below is read before it is written
    m = scrape(gw)
    assert named(m, "tollgate_key_budget_remaining_nanodollars")  # the per-key gauges are on
    assert value(m, "tollgate_refusals_total", reason="upstream_rejected") is None  # the upstream's 401: not the client's
    assert value(m, "tollgate_refusals_total", reason="upstream_error") == 1  # ... a 502 of the gateway
    texts = {
        "/metrics": gw.admin("GET", "/metrics").text,
        "request log": log.read_text(),
        "gateway output": gw.log.read_text(),
        "owner's request log": gw.manage("GET", "/api/requests?limit=100", std["mk"]).text,
        "operator's request log": gw.admin("GET", "/admin/requests?limit=100").text,
        "key's own request log": gw.manage("GET", "/v1/requests?limit=100", new_sk).text,
    }
    for path in ("/admin/metrics/traffic", "/admin/metrics/ledger", "/admin/metrics/caches"):
        r = gw.admin("GET", path)
        assert r.status_code == 200, r.text
        texts[path] = r.text
    assert "[redacted]" in texts["owner's request log"] and "[redacted]" in texts["operator's request log"]
    assert len(texts["request log"].splitlines()) >= len(ids)
    named_secrets = {"std key": std["sk"], "rotated key": new_sk, "tiny key": tiny["sk"], "std management key":
                     std["mk"], "tiny management key": tiny["mk"], "operator token": gw.admin_token,
                     "upstream key": upstream_key}
    for where, text in texts.items():
        for what, secret in named_secrets.items():
            leaked = sorted(piece for piece in fragments(secret) if piece in text)
            assert not leaked, f"{what} in {where}: {leaked[:3]}"
