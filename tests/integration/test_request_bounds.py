"""Requests within bounds, through the real gateway and a real fake upstream that echoes what it got.

Output caps: one per request, at most the model's max_output, the one reserved for. A request that can
never fit its pool: a non-retriable 400 of its own. Values operators and owners set: bounded, 400s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import minilm_tokenizer
from tests.integration.budget_support import IN, MAX_OUTPUT, OUT, Counter, check_budget_refusal, metered_config
from tests.support.processes import ROOT
from tests.support.toml import dumps
from tollgate.proxy.estimate import MESSAGE_OVERHEAD, REQUEST_OVERHEAD

CAP_FIELDS = {"max_tokens", "max_completion_tokens", "n_predict", "num_predict", "max_new_tokens"}
HELD = "[[head-delay:4]] [[echo]]"  # the upstream holds the request (its reservation stays open), then echoes it


@pytest.fixture
def metered(upstream_factory, gateway_factory):
    def start(budget: str, window: str = "5h"):
        upstream = upstream_factory("bounds", tokenizer=minilm_tokenizer())
        return gateway_factory(metered_config(upstream.url, budget, window))

    return start


def post(gw, sk: str, path: str, body: dict, **headers) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers={"Authorization": f"Bearer {sk}", **headers}, timeout=60)


def chat_body(content: str, **extra) -> dict:
    return {"model": "metered", "messages": [{"role": "user", "content": content}], **extra}


def pool(gw, sk: str) -> dict:
    return httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {sk}"}, timeout=30).json()["budget"]


def reserved(budget: dict) -> int:
    return budget["limit_nanos"] - budget["spent_nanos"] - budget["remaining_nanos"]


def chat_bound(counter: Counter, content: str) -> int:
    return counter.tokens(content) + MESSAGE_OVERHEAD + REQUEST_OVERHEAD


def held_request(gw, sk: str, path: str, body: dict, watcher: str) -> tuple[int, dict, httpx.Response]:
    """Send `body` (which holds the upstream a few seconds); while it is in flight, read the pool's
    reservation with `watcher` (another key on the same pool); return it, the body the upstream got
    and the answer."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", post(gw, sk, path, body)))
    thread.start()
    held = 0
    for _ in range(300):  # bounded: the upstream holds the request for seconds
        held = reserved(pool(gw, watcher))
        if held or "r" in out:
            break
        time.sleep(0.01)
    thread.join(timeout=60)
    r = out["r"]
    assert r.status_code == 200, r.text
    answer = r.json()["choices"][0]
    sent = json.loads(answer["message"]["content"] if "message" in answer else answer["text"])
    return held, sent, r


def two_keys(gw) -> tuple[str, str]:
    account_id, mk = gw.account()
    sub = gw.subscribe(account_id, "metered")
    keys = [gw.manage("POST", "/api/keys/subscription", mk, {"name": n, "subscriptionId": sub}).json()["data"]["apiKey"]
            for n in ("a", "b")]
    return keys[0], keys[1]


# -- output caps -------------------------------------------------------------------------------

def test_an_enormous_max_tokens_reserves_only_max_output_and_other_keys_are_served(metered):
    counter = Counter()
    gw = metered("0.01")  # 10,000,000 nanos: the whole pool, were 10^18 tokens reserved
    a, b = two_keys(gw)
    content = f"the cat {HELD}"
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault(
        "r", post(gw, a, "/v1/chat/completions", chat_body(content, max_tokens=10**18))))
    thread.start()
    held = 0
    for _ in range(300):
        held = reserved(pool(gw, b))
        if held or "r" in out:
            break
        time.sleep(0.01)
    # While it is held: its reservation is its prompt bound and max_output, and key b is served.
    assert held == chat_bound(counter, content) * IN + MAX_OUTPUT * OUT
    other = post(gw, b, "/v1/chat/completions", chat_body("hi [[reply:3]]", max_tokens=3))
    assert "r" not in out and other.status_code == 200, other.text
    thread.join(timeout=60)
    r = out["r"]
    assert r.status_code == 200, r.text
    sent = json.loads(r.json()["choices"][0]["message"]["content"])
    assert {k: sent[k] for k in CAP_FIELDS & sent.keys()} == {"max_tokens": MAX_OUTPUT}


def test_one_output_cap_goes_upstream_the_one_reserved_for(metered):
    counter = Counter()
    gw = metered("1")
    a, b = two_keys(gw)
    content = f"the dog {HELD}"
    body = chat_body(content, max_tokens=40, max_completion_tokens=30, n_predict=100_000, num_predict=90)
    held, sent, _ = held_request(gw, a, "/v1/chat/completions", body, b)
    assert {k: sent[k] for k in CAP_FIELDS & sent.keys()} == {"max_completion_tokens": 30}
    assert held == chat_bound(counter, content) * IN + 30 * OUT


def test_n_predict_alone_is_a_limit_and_never_forwarded(metered):
    counter = Counter()
    gw = metered("1")
    a, b = two_keys(gw)
    content = f"the bird {HELD}"
    held, sent, _ = held_request(gw, a, "/v1/chat/completions", chat_body(content, n_predict=12), b)
    assert {k: sent[k] for k in CAP_FIELDS & sent.keys()} == {"max_tokens": 12}
    assert held == chat_bound(counter, content) * IN + 12 * OUT


def test_n_and_best_of_are_reserved_for_every_choice(metered):
    counter = Counter()
    gw = metered("1")
    a, b = two_keys(gw)
    prompt = f"once upon a time {HELD}"
    body = {"model": "metered", "prompt": prompt, "max_tokens": 20, "max_completion_tokens": 50, "n": 2, "best_of": 3}
    held, sent, _ = held_request(gw, a, "/v1/completions", body, b)
    assert {k: sent[k] for k in CAP_FIELDS & sent.keys()} == {"max_tokens": 20}
    assert (sent["n"], sent["best_of"]) == (2, 3)
    assert held == (counter.tokens(prompt) + REQUEST_OVERHEAD) * IN + 3 * 20 * OUT
    content = f"the fish {HELD}"
    held, sent, _ = held_request(gw, a, "/v1/chat/completions", chat_body(content, max_tokens=10**9, n=2), b)
    assert (sent["max_tokens"], sent["n"]) == (MAX_OUTPUT, 2)
    assert held == chat_bound(counter, content) * IN + 2 * MAX_OUTPUT * OUT
    r = post(gw, a, "/v1/completions", {"model": "metered", "prompt": "x", "n": 3, "best_of": 2})
    assert r.status_code == 400 and r.json()["error"]["param"] == "best_of"


def test_best_of_shares_a_clamped_allowance(metered):
    """When the budget clamps the output, each best_of candidate gets its share: never more in all."""
    counter = Counter()
    gw = metered("0.0002")  # 200,000 nanos
    a = gw.key(plan="metered")["sk"]
    prompt = "the cat [[echo]]"
    r = post(gw, a, "/v1/completions", {"model": "metered", "prompt": prompt, "max_tokens": 200, "best_of": 4})
    assert r.status_code == 200, r.text
    sent = json.loads(r.json()["choices"][0]["text"])
    bound = counter.tokens(prompt) + REQUEST_OVERHEAD
    assert sent["max_tokens"] == (200_000 - bound * IN) // OUT // 4
    assert bound * IN + 4 * sent["max_tokens"] * OUT <= 200_000


# -- a request that can never fit -----------------------------------------------------------------

def records(gw, mk: str, key_id: str, expected: int) -> dict:
    """The key's usage report, once `expected` records are in (refusals are written shortly after)."""
    data: dict = {}
    for _ in range(200):
        data = gw.manage("GET", f"/api/usage/{key_id}", mk).json()["data"]
        if data["total"]["requests"] >= expected:
            break
        time.sleep(0.02)
    return data


def test_a_request_that_can_never_fit_its_pool_is_a_400_of_its_own(metered):
    counter = Counter()
    gw = metered("0.0001")  # 100,000 nanos per 5h window
    key = gw.key(plan="metered")
    content = "the cat " * 60
    smallest = chat_bound(counter, content) * IN + OUT
    assert smallest > 100_000
    r = post(gw, key["sk"], "/v1/chat/completions", chat_body(content, max_tokens=5))
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["type"]) == ("request_exceeds_budget", "invalid_request_error")
    assert f"${(smallest - 100_000) / 1e9:.9f}".rstrip("0") in error["message"]
    assert "whole 5h budget of $0.0001" in error["message"] and "usage limit" not in error["message"]
    assert r.headers["x-should-retry"] == "false" and "retry-after" not in r.headers
    # The Anthropic endpoint: the same refusal in Anthropic's shape.
    r = post(gw, key["sk"], "/anthropic/v1/messages", {"model": "metered", "max_tokens": 5,
                                                      "messages": [{"role": "user", "content": content}]})
    assert r.status_code == 400 and r.headers["x-should-retry"] == "false"
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "request_exceeds_budget"
    # Every answer needs one token at least: 128 of them never fit either.
    short = "the cat"
    assert chat_bound(counter, short) * IN + 128 * OUT > 100_000
    r = post(gw, key["sk"], "/v1/chat/completions", chat_body(short, max_tokens=5, n=128))
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_exceeds_budget"
    # Nothing held, nothing charged, one usage record per request.
    budget = pool(gw, key["sk"])
    assert (budget["spent_nanos"], budget["remaining_nanos"]) == (0, 100_000)
    report = records(gw, key["mk"], key["key_id"], 3)
    assert (report["total"]["requests"], report["total"]["spentNanos"]) == (3, 0)


def test_a_request_that_fits_but_not_now_keeps_the_budget_429(metered):
    gw = metered("0.0001")
    key = gw.key(plan="metered")
    r = None
    for _ in range(100):  # spend the window down
        r = post(gw, key["sk"], "/v1/chat/completions", chat_body("the cat [[reply:8]]", max_tokens=8))
        if r.status_code != 200:
            break
    assert r is not None and r.status_code == 429
    check_budget_refusal(r.status_code, r.headers, r.json())
    # ...while one that could never fit is still told so, not to wait for the reset.
    r = post(gw, key["sk"], "/v1/chat/completions", chat_body("the cat " * 60, max_tokens=1))
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_exceeds_budget"


def test_a_key_budget_too_small_for_the_request_names_the_key(metered):
    gw = metered("1")
    account_id, mk = gw.account()
    sub = gw.subscribe(account_id, "metered")
    small = gw.manage("POST", "/api/keys/subscription", mk, {
        "name": "small", "subscriptionId": sub, "budget": {"limit": "0.00005", "window": "1h"}}).json()["data"]
    r = post(gw, small["apiKey"], "/v1/chat/completions", chat_body("the cat " * 40, max_tokens=5))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "request_exceeds_budget" and "this key's whole 1h budget of $0.00005" in error["message"]
    assert post(gw, small["apiKey"], "/v1/chat/completions", chat_body("hi [[reply:2]]", max_tokens=2)).status_code == 200


# -- bounds on what operators and owners set --------------------------------------------------------

def test_operator_api_bounds_windows_periods_and_money(metered):
    gw = metered("1")
    account_id, _ = gw.account()
    for body, param in (
        ({"slug": "w1", "budgetPerWindow": "1", "window": "366d"}, "window"),
        ({"slug": "w2", "budgetPerWindow": "1", "window": "100000000d"}, "window"),
        ({"slug": "w3", "budgetPerWindow": "1", "window": "0s"}, "window"),
        ({"slug": "p1", "budgetPerWindow": "1", "periodDays": 100_000_000_000_000_000}, "periodDays"),
        ({"slug": "p2", "budgetPerWindow": "1", "periodDays": 3651}, "periodDays"),
        ({"slug": "b1", "budgetPerWindow": "1000000.01"}, "budgetPerWindow"),
        ({"slug": "r1", "budgetPerWindow": "1", "rpm": 2**63}, "rpm"),
    ):
        r = gw.admin("POST", "/admin/plans", body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param and param in r.json()["error"]["message"]
    assert gw.admin("POST", "/admin/plans", {"slug": "yearly", "budgetPerWindow": "1000000", "window": "365d",
                                             "periodDays": 3650}).status_code == 201
    r = gw.admin("POST", f"/admin/accounts/{account_id}/subscriptions",
                 {"plan": "metered", "periodDays": 100_000_000_000_000_000})
    assert r.status_code == 400 and r.json()["error"]["param"] == "periodDays"
    r = gw.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": "1000001"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "amount"


def test_management_api_bounds_key_budgets_and_metadata(metered):
    gw = metered("1")
    account_id, mk = gw.account()
    sub = gw.subscribe(account_id, "metered")
    for extra, param in (
        ({"budget": {"limit": "0.05", "window": "100000000d"}}, "budget.window"),
        ({"budget": {"limit": "0.05", "window": "400d"}}, "budget.window"),
        ({"budget": {"limit": "2000000", "window": "1h"}}, "budget.limit"),
        ({"budget": {"limit": "abc", "window": "1h"}}, "budget.limit"),
        ({"metadata": {f"k{i}": i for i in range(51)}}, "metadata"),
        ({"metadata": {"k": "v" * 5000}}, "metadata"),
        ({"metadata": {"k": {"deep": [1, 2]}}}, "metadata"),
        ({"endUser": "u" * 201}, "endUser"),
    ):
        r = gw.manage("POST", "/api/keys/subscription", mk, {"name": "k", "subscriptionId": sub, **extra})
        assert r.status_code == 400, (extra, r.text)
        assert r.json()["success"] is False and r.json()["error"]["param"] == param
    r = gw.manage("POST", "/api/keys/subscription", mk, {
        "name": "k", "subscriptionId": sub, "budget": {"limit": "0.05", "window": "365d"},
        "metadata": {"customer": "c-1", "tier": 2}, "endUser": "u-1"})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert (data["budget"], data["metadata"]) == ({"limit": "0.05", "limitNanos": 50_000_000, "window": "365d"},
                                                  {"customer": "c-1", "tier": 2})
    # A key with a year-long window answers with a real reset time (not a 500).
    r = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {data['apiKey']}"})
    assert r.status_code == 200
    assert {b["duration"] for b in r.json()["budgets"]} == {"5h", "365d"}


def cli(gw, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tollgate", *args, "--config", str(gw.config_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_the_cli_and_the_config_file_refuse_values_out_of_bounds(metered, tmp_path):
    gw = metered("1")
    account = json.loads(cli(gw, "accounts", "create", "bounded", "--json").stdout)["id"]
    for args, words in (
        (("plans", "create", "long", "--budget", "1", "--window", "400d"), "window must be between 1s and 365d"),
        (("plans", "create", "long", "--budget", "1", "--period-days", "100000000000000000"),
         "period_days must be between 1 and 3650 days"),
        (("plans", "create", "rich", "--budget", "1000000.5"), "budget_per_window must be at most 1000000.00"),
        (("subscriptions", "grant", account, "metered", "--period-days", "100000000000000000"),
         "period_days must be between 1 and 3650 days"),
        (("credits", "grant", account, "1000001"), "amount must be at most 1000000.00"),
        (("keys", "create", account, "--name", "k", "--credit", "--budget", "0.5", "--window", "366d"),
         "budget window must be between 1s and 365d"),
    ):
        proc = cli(gw, *args)
        assert proc.returncode == 1 and words in proc.stderr, (args, proc.stderr)
    proc = cli(gw, "plans", "create", "long", "--budget", "1", "--window", "100000000d")
    assert proc.returncode == 2 and "is longer than 3650d" in proc.stderr
    assert cli(gw, "plans", "create", "yearly", "--budget", "1", "--window", "365d").returncode == 0
    # The config file: a clear line naming the key, before anything starts.
    bad = tmp_path / "bad.toml"
    bad.write_text(dumps(metered_config("http://127.0.0.1:9", "1", window="100000000d")))
    proc = subprocess.run([sys.executable, "-m", "tollgate", "plans", "list", "--config", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert "bad config: plans[0].window: '100000000d' is longer than 3650d" in proc.stderr
