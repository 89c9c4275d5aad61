"""Budget rules through the real gateway: windows that reset, key budgets inside pools, credits, rate limits."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from datetime import datetime

import httpx
import openai
import pytest

from tests.conftest import minilm_tokenizer
from tests.integration.budget_support import IN, OUT, Counter, check_budget_refusal, metered_config
from tests.support.processes import ROOT
from tests.support.toml import dumps


def chat(gw, sk: str, content: str, max_tokens: int | None = None, **extra) -> httpx.Response:
    body = {"model": "metered", "messages": [{"role": "user", "content": content}], **extra}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return httpx.post(gw.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {sk}"}, timeout=30)


def usage(gw, sk: str) -> dict:
    return httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {sk}"}).json()


@pytest.fixture
def metered(upstream_factory, gateway_factory):
    def start(budget: str, window: str = "5h", **server):
        upstream = upstream_factory("metered", tokenizer=minilm_tokenizer())
        return gateway_factory(metered_config(upstream.url, budget, window, **server))

    return start


def test_a_two_second_window_resets_exactly_at_resets_at(metered):
    gw = metered("0.0002", window="2s")  # 200,000 nanos: a few small requests
    key = gw.key(plan="metered")
    # Start just after a window boundary so that the whole test fits in one window.
    time.sleep(2 - time.time() % 2 + 0.05)
    refusal = None
    for _ in range(20):
        r = chat(gw, key["sk"], "the cat [[reply:20]]", max_tokens=20)
        if r.status_code == 429:
            refusal = r
            break
    assert refusal is not None, "the budget never ran out"
    now = time.time()
    body = refusal.json()
    check_budget_refusal(429, refusal.headers, body, now)
    reset_ts = datetime.fromisoformat(body["error"]["reset_at"].replace("Z", "+00:00")).timestamp()
    assert reset_ts % 2 == 0 and 0 < reset_ts - now <= 2
    assert int(refusal.headers["retry-after"]) == math.ceil(reset_ts - now) or int(refusal.headers["retry-after"]) == 1
    before = usage(gw, key["sk"])
    assert before["budget"]["resets_at"] == body["error"]["reset_at"]
    assert before["budget"]["spent_nanos"] > 0
    time.sleep(max(0.0, reset_ts - time.time()) + 0.02)
    after = usage(gw, key["sk"])
    assert after["budget"]["spent_nanos"] == 0
    assert after["budget"]["window_start"] == body["error"]["reset_at"]
    assert chat(gw, key["sk"], "the cat [[reply:3]]", max_tokens=3).status_code == 200


def test_max_tokens_is_clamped_to_what_the_budget_can_pay(metered):
    counter = Counter()
    gw = metered("0.0001")  # 100,000 nanos
    key = gw.key(plan="metered")
    prompt = "the cat [[reply:200]]"
    prompt_cost = (counter.tokens(prompt) + 7) * IN
    r = chat(gw, key["sk"], prompt, max_tokens=200)  # worst case 600,000+ nanos: more than the whole budget
    assert r.status_code == 200, r.text
    answer = r.json()
    # The reservation covers the prompt's upper bound (content + the gateway's template allowance).
    from tollgate.proxy.estimate import MESSAGE_OVERHEAD, REQUEST_OVERHEAD

    bound = counter.tokens(prompt) + MESSAGE_OVERHEAD + REQUEST_OVERHEAD
    affordable = (100_000 - bound * IN) // OUT
    assert answer["usage"]["completion_tokens"] == affordable
    assert answer["choices"][0]["finish_reason"] == "length"
    assert int(r.headers["x-request-cost-nanos"]) == prompt_cost + affordable * OUT <= 100_000
    r = chat(gw, key["sk"], prompt, max_tokens=200)
    check_budget_refusal(r.status_code, r.headers, r.json())


def test_a_key_budget_and_its_pool_both_apply(metered):
    gw = metered("0.001")  # the pool: 1,000,000 nanos
    account_id, mk = gw.account()
    sub = gw.subscribe(account_id, "metered")
    small = gw.manage("POST", "/api/keys/subscription", mk,
                      {"name": "small", "subscriptionId": sub, "budget": {"limit": "0.0001", "window": "1h"}}).json()["data"]
    big = gw.manage("POST", "/api/keys/subscription", mk, {"name": "big", "subscriptionId": sub}).json()["data"]
    spent_small = 0
    while True:
        r = chat(gw, small["apiKey"], "the cat [[reply:10]]", max_tokens=10)
        if r.status_code == 429:
            body = r.json()
            check_budget_refusal(429, r.headers, body)
            assert "this key's 1h window" in body["error"]["message"]
            break
        spent_small += int(r.headers["x-request-cost-nanos"])
    assert spent_small <= 100_000
    # The other key on the same pool still works, and the pool counts both.
    r = chat(gw, big["apiKey"], "the cat [[reply:10]]", max_tokens=10)
    assert r.status_code == 200
    pool = usage(gw, big["apiKey"])["budget"]
    assert pool["spent_nanos"] == spent_small + int(r.headers["x-request-cost-nanos"])
    # Spend the pool down with the big key; then both keys are refused by the pool.
    while chat(gw, big["apiKey"], "the cat " * 50 + "[[reply:100]]", max_tokens=100).status_code == 200:
        pass
    # Smaller requests still fit in what is left, until not even one output token does.
    for _ in range(100):
        r = chat(gw, big["apiKey"], "the cat [[reply:1]]", max_tokens=1)
        if r.status_code == 429:
            break
    assert usage(gw, big["apiKey"])["budget"]["spent_nanos"] <= 1_000_000
    check_budget_refusal(r.status_code, r.headers, r.json())
    assert "this 5h window" in r.json()["error"]["message"]


def test_credit_keys_never_drive_the_balance_below_zero(metered):
    gw = metered("1")
    account_id, mk = gw.account()
    gw.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": "0.0005"})
    key = gw.manage("POST", "/api/keys/credit", mk, {"name": "c"}).json()["data"]["apiKey"]
    total = 0
    while True:
        r = chat(gw, key, "the cat " * 20 + "[[reply:50]]", max_tokens=50)
        if r.status_code != 200:
            break
        total += int(r.headers["x-request-cost-nanos"])
    assert r.status_code == 429
    error = r.json()["error"]
    assert error["code"] == "insufficient_credits" and r.headers["x-should-retry"] == "false"
    assert total <= 500_000
    balance = gw.manage("GET", "/api/billing/credits", mk).json()["data"]
    assert balance["balanceNanos"] == 500_000 - total >= 0
    assert usage(gw, key)["credits"]["balance_nanos"] == balance["balanceNanos"]
    # A top-up by the operator is usable on the next request.
    gw.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": "1"})
    assert chat(gw, key, "the cat [[reply:2]]", max_tokens=2).status_code == 200


def test_rpm_and_tpm_answer_429_rate_limit_exceeded(upstream_factory, gateway_factory):
    upstream = upstream_factory("rl", tokenizer=minilm_tokenizer())
    config = metered_config(upstream.url, "10")
    config["plans"][0].update({"rpm": 3, "tpm": 1_000_000})
    config["plans"].append({"slug": "tpm", "budget_per_window": 10, "rpm": 1000, "tpm": 100})
    gw = gateway_factory(config)
    key = gw.key(plan="metered")
    codes = [chat(gw, key["sk"], "hi [[reply:1]]", max_tokens=1).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = chat(gw, key["sk"], "hi [[reply:1]]", max_tokens=1)
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(r.headers["retry-after"]) <= 20
    # tpm: a prompt larger than the whole bucket is admitted when the bucket is full...
    key2 = gw.key(plan="tpm")
    big = "the cat " * 200 + "[[reply:5]]"
    assert chat(gw, key2["sk"], big, max_tokens=5).status_code == 200
    # ...and then the bucket must refill before the next one.
    r = chat(gw, key2["sk"], big, max_tokens=5)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    # The official SDK does retry per-minute limits (x-should-retry is not false there).
    assert r.headers["x-should-retry"] == "true"


def test_lifecycle_cancel_expire_revoke_unknown(metered):
    gw = metered("1")
    key = gw.key(plan="metered")
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)
    gw.admin("POST", f"/admin/subscriptions/{key['subscription']}/cancel")
    assert c.chat.completions.create(model="metered", max_tokens=2,
                                     messages=[{"role": "user", "content": "[[reply:2]]"}]).choices
    gw.admin("POST", f"/admin/subscriptions/{key['subscription']}/expire")
    with pytest.raises(openai.PermissionDeniedError) as info:
        c.chat.completions.create(model="metered", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "subscription_expired"
    other = gw.key(plan="metered", name="other")
    gw.manage("DELETE", f"/api/keys/{other['key_id']}", other["mk"])
    r = chat(gw, other["sk"], "x")
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_revoked"
    r = chat(gw, "sk_" + "x" * 43, "x")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_usage_apis_agree_with_the_ledger_to_the_nano(metered):
    gw = metered("1")
    key = gw.key(plan="metered")
    mk = key["mk"]
    second = gw.manage("POST", "/api/keys/subscription", mk, {"name": "two", "subscriptionId": key["subscription"]}).json()["data"]
    costs = 0
    for i in range(6):
        sk = key["sk"] if i % 2 else second["apiKey"]
        stream = i % 3 == 0
        r = chat(gw, sk, "the cat " * (i + 1) + f"[[reply:{i + 2}]]", stream=stream,
                 stream_options={"include_usage": True} if stream else None)
        assert r.status_code == 200
        if stream:
            import json as _json

            events = [line[6:] for line in r.text.splitlines() if line.startswith("data: {")]
            costs += _json.loads(events[-1])["usage"]["cost_nanos"]
        else:
            costs += int(r.headers["x-request-cost-nanos"])
    pool = usage(gw, key["sk"])["budget"]["spent_nanos"]
    account = gw.manage("GET", "/api/usage", mk).json()["data"]
    per_key = {k["keyId"]: k["spentNanos"] for k in account["keys"]}
    assert pool == costs == account["total"]["spentNanos"] == sum(per_key.values())
    assert account["subscriptions"][0]["budget"]["spentNanos"] == pool
    by_key = gw.manage("GET", f"/api/usage/{key['key_id']}", mk).json()["data"]
    assert by_key["total"]["spentNanos"] == per_key[key["key_id"]]
    for grouping in ("byWindow", "byDay", "byWeek", "byMonth"):
        assert sum(g["spentNanos"] for g in by_key[grouping]) == by_key["total"]["spentNanos"]


def test_more_than_one_worker_on_the_embedded_store_refuses_to_start(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(dumps({"server": {"workers": 2, "database": f"sqlite:///{tmp_path / 'x.db'}"}}))
    proc = subprocess.run([sys.executable, "-m", "tollgate", "serve", "--config", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "run one worker" in proc.stderr
