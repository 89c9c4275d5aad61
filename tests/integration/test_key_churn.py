"""Keys created and revoked all day: each change reaches the running gateway on the very next request,
and drops only the cached contexts it touches (issue 18).

The gateway is the real one over HTTP; the second process that changes the database is the
`tollgate` CLI (one gateway serves a database; any process may edit its accounts). The key
cache's counts come from the operator's /admin/metrics/caches.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from tests.conftest import fake_config
from tests.support.metrics import samples, value
from tests.support.processes import ROOT, Gateway


def cli(gw: Gateway, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "tollgate", *args, "--config", str(gw.config_path), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def usage(gw: Gateway, sk: str) -> httpx.Response:
    return httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {sk}"}, timeout=30)


def chat(gw: Gateway, sk: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})


def cache(gw: Gateway) -> dict:
    r = gw.admin("GET", "/admin/metrics/caches")
    assert r.status_code == 200, r.text
    return r.json()["data"]["keyContexts"]


def refusal(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def test_changes_reach_the_next_request_and_leave_other_keys_cached(gateway_factory, fake_upstream):
    gw = gateway_factory(fake_config(fake_upstream.url))
    plan = gw.admin("POST", "/admin/plans", {"slug": "reseller", "budgetPerWindow": 1, "rpm": 500})
    assert plan.status_code == 201, plan.text
    keys = [gw.key(plan="reseller", name=f"user{n}") for n in range(4)]
    for key in keys:
        assert chat(gw, key["sk"]).status_code == 200
    before = cache(gw)
    assert before["size"] >= 4

    # Revoked through the management API: refused on its very next request...
    assert gw.manage("DELETE", f"/api/keys/{keys[0]['key_id']}", keys[0]["mk"]).status_code == 200
    assert refusal(chat(gw, keys[0]["sk"])) == (403, "key_revoked")
    # ...while every other key is still served from the cache (the revoked one is the only miss).
    for key in keys[1:]:
        assert chat(gw, key["sk"]).status_code == 200
    after = cache(gw)
    assert after["misses"] == before["misses"] + 1
    assert after["hits"] >= before["hits"] + 3
    assert after["resets"] == 0

    # Another process (the CLI) creates a key: usable on its first request.
    made = cli(gw, "keys", "create", keys[1]["account"], "--name", "cli", "--subscription", keys[1]["subscription"])
    assert chat(gw, made["api_key"]).status_code == 200

    # ...revokes one: refused on its next request.
    cli(gw, "keys", "revoke", keys[1]["account"], keys[1]["key_id"])
    assert refusal(chat(gw, keys[1]["sk"])) == (403, "key_revoked")

    # ...expires a subscription: its keys are refused on their next request, the others' are not.
    cli(gw, "subscriptions", "expire", keys[2]["subscription"])
    assert refusal(chat(gw, keys[2]["sk"])) == (403, "subscription_expired")
    assert chat(gw, keys[3]["sk"]).status_code == 200

    # ...changes the plan: the next request sees the new limits.
    assert usage(gw, keys[3]["sk"]).json()["rate_limits"]["rpm"] == 500
    cli(gw, "plans", "update", "reseller", "--rpm", "7")
    assert usage(gw, keys[3]["sk"]).json()["rate_limits"]["rpm"] == 7

    # ...cancels a subscription at period end: still served until then.
    cli(gw, "subscriptions", "cancel", keys[3]["subscription"])
    assert chat(gw, keys[3]["sk"]).status_code == 200
    assert usage(gw, keys[3]["sk"]).json()["plan"]["status"] == "canceled"
    assert cache(gw)["resets"] == 0


def test_the_key_cache_is_sized_by_the_config_and_shows_in_the_metrics(gateway_factory, fake_upstream):
    gw = gateway_factory(fake_config(fake_upstream.url, key_cache=2))
    keys = [gw.key(plan="tiny", name=f"k{n}") for n in range(3)]
    for key in keys:
        assert usage(gw, key["sk"]).status_code == 200
    stats = cache(gw)
    assert (stats["size"], stats["capacity"], stats["misses"], stats["evictions"]) == (2, 2, 3, 1)
    assert usage(gw, keys[0]["sk"]).status_code == 200  # evicted: read again, and still right
    scraped = samples(gw.admin("GET", "/metrics").text)
    assert value(scraped, "tollgate_cache_capacity", cache="key_contexts") == 2
    assert value(scraped, "tollgate_cache_misses_total", cache="key_contexts") == 4
