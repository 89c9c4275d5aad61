"""Resellers over HTTP against the real gateway process: an end-user label and bounded metadata on each key
(set at creation, changed later, from the API and the CLI), a key with its own budget and window for one
end user in one call, and usage and key lists filtered and grouped by end user, to the nano-dollar."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.processes import ROOT, Gateway, start_upstream


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resellers")
    upstream = start_upstream(tmp)
    config = fake_config(upstream.url)
    config["plans"].append({"slug": "wholesale", "window": "5h", "budget_per_window": "100", "rpm": 100_000,
                            "tpm": 100_000_000})
    gateway = Gateway(tmp, config)
    gateway.start("/health")
    yield gateway
    gateway.stop()
    upstream.stop()


def cli_json(gw: Gateway, *args: str):
    done = subprocess.run([sys.executable, "-m", "tollgate", *args, "--config", str(gw.config_path), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def chat(gw: Gateway, sk: str, n: int = 1) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "fake-chat", "messages": [{"role": "user", "content": f"n{n} [[reply:{n % 5 + 1}]]"}]})


def error(r: httpx.Response) -> tuple[int, str | None]:
    body = r.json()
    assert body["success"] is False, r.text
    return r.status_code, body["error"].get("param")


def reseller(gw: Gateway, name: str) -> tuple[str, str, str]:
    """(account id, management key, subscription id) of a reseller on the wholesale plan."""
    account_id, mk = gw.account(name)
    return account_id, mk, gw.subscribe(account_id, "wholesale")


def test_one_call_gives_an_end_user_a_key_with_its_own_budget_window_and_metadata(gw):
    _, mk, sub = reseller(gw, "one-call")
    r = gw.manage("POST", "/api/keys", mk, {"name": "cust-1", "subscriptionId": sub, "endUser": "customer-1",
                                            "metadata": {"tier": "gold", "seats": 3, "trial": False, "ref": None},
                                            "budget": {"limit": "0.000001", "window": "1h"}})
    assert r.status_code == 201, r.text
    key = r.json()["data"]
    assert (key["endUser"], key["metadata"]) == ("customer-1", {"tier": "gold", "seats": 3, "trial": False, "ref": None})
    assert key["budget"] == {"limit": "0.000001", "limitNanos": 1000, "window": "1h"}
    budgets = {b["kind"]: b for b in httpx.get(gw.url + "/v1/usage", timeout=30,
                                                headers={"Authorization": f"Bearer {key['apiKey']}"}).json()["budgets"]}
    assert (budgets["key"]["limit_nanos"], budgets["key"]["duration"]) == (1000, "1h")
    assert budgets["subscription"]["limit_nanos"] == 100_000_000_000
    # The key's own budget holds inside the roomy pool: this request can never fit it...
    r = chat(gw, key["apiKey"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_exceeds_budget"
    assert "this key's" in r.json()["error"]["message"]
    # ...while another end user's key on the same pool, without one, is served.
    r = gw.manage("POST", "/api/keys", mk, {"name": "cust-2", "subscriptionId": sub, "endUser": "customer-2"})
    assert chat(gw, r.json()["data"]["apiKey"]).status_code == 200

    for extra, param in (({"endUser": "x" * 201}, "endUser"), ({"endUser": 7}, "endUser"),
                         ({"metadata": {"nested": {"a": 1}}}, "metadata"), ({"metadata": ["a"]}, "metadata"),
                         ({"metadata": {f"k{n}": n for n in range(51)}}, "metadata"),
                         ({"metadata": {"k": "v" * 501}}, "metadata")):
        r = gw.manage("POST", "/api/keys", mk, {"name": "bad", "subscriptionId": sub, **extra})
        assert error(r) == (400, param), extra


def test_a_keys_label_name_and_metadata_change_alone(gw):
    _, mk, sub = reseller(gw, "relabel")
    key = gw.manage("POST", "/api/keys", mk, {"name": "k", "subscriptionId": sub, "endUser": "u1",
                                              "metadata": {"a": 1}}).json()["data"]
    path = f"/api/keys/{key['id']}"
    r = gw.manage("PATCH", path, mk, {"endUser": "u2"})
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["endUser"], r.json()["data"]["metadata"], r.json()["data"]["name"]) == ("u2", {"a": 1}, "k")
    r = gw.manage("PATCH", path, mk, {"name": "renamed", "metadata": {"b": "x"}})
    assert (r.json()["data"]["endUser"], r.json()["data"]["metadata"], r.json()["data"]["name"]) == \
        ("u2", {"b": "x"}, "renamed")
    r = gw.manage("PATCH", path, mk, {"endUser": None, "metadata": None})
    assert (r.json()["data"]["endUser"], r.json()["data"]["metadata"]) == (None, None)
    assert "apiKey" not in r.json()["data"]
    assert chat(gw, key["apiKey"]).status_code == 200  # the key itself is untouched

    for body, param in (({}, None), ({"budget": {"limit": 1}}, "budget"), ({"name": None}, "name"),
                        ({"name": ""}, "name"), ({"endUser": "x" * 201}, "endUser"),
                        ({"metadata": {"a": [1]}}, "metadata"), ({"metadata": "text"}, "metadata")):
        assert error(gw.manage("PATCH", path, mk, body)) == (400, param), body
    _, stranger, _ = reseller(gw, "stranger")
    assert error(gw.manage("PATCH", path, stranger, {"endUser": "stolen"})) == (404, None)
    assert error(gw.manage("PATCH", "/api/keys/key_nope", mk, {"endUser": "x"})) == (404, None)


def test_usage_and_key_lists_by_end_user_equal_the_requests_made(gw):
    account_id, mk, sub = reseller(gw, "grouping")
    labels = ("alice", "alice", "bob", None, "carol")  # carol's key never spends
    keys = []
    for n, label in enumerate(labels):
        body = {"name": f"k{n}", "subscriptionId": sub, **({"endUser": label} if label else {})}
        keys.append(gw.manage("POST", "/api/keys", mk, body).json()["data"])
    spent: dict[str | None, list[int]] = {"alice": [], "bob": [], "carol": [], None: []}
    for n in range(24):
        key = keys[n % 4]
        r = chat(gw, key["apiKey"], n)
        assert r.status_code == 200, r.text
        spent[key["endUser"]].append(int(r.headers["x-request-cost-nanos"]))

    data = gw.manage("GET", "/api/usage?groupBy=endUser", mk).json()["data"]
    groups = [(g["endUser"], g["keyCount"], g["spentNanos"], g["requests"]) for g in data["endUsers"]]
    assert groups == [("alice", 2, sum(spent["alice"]), 12), ("bob", 1, sum(spent["bob"]), 6),
                      ("carol", 1, 0, 0), (None, 1, sum(spent[None]), 6)]
    assert sum(g["spentNanos"] for g in data["endUsers"]) == data["total"]["spentNanos"]

    alice = gw.manage("GET", "/api/usage?endUser=alice", mk).json()["data"]
    assert alice["endUser"] == "alice" and "endUsers" not in alice
    assert (alice["total"]["spentNanos"], alice["total"]["requests"]) == (sum(spent["alice"]), 12)
    alice_keys = [k["keyId"] for k in alice["keys"]]  # oldest first (created in one second: then by id)
    assert sorted(alice_keys) == sorted([keys[0]["id"], keys[1]["id"]])
    assert sum(d["spentNanos"] for d in alice["byDay"]) == sum(spent["alice"])
    both = gw.manage("GET", "/api/usage?endUser=alice&groupBy=endUser", mk).json()["data"]
    assert [g["endUser"] for g in both["endUsers"]] == ["alice"]

    # Keys listed by end user, a page at a time.
    pages, after = [], None
    for _ in range(5):  # bounded: two keys, one a page
        query = "endUser=alice&limit=1" + (f"&after={after}" if after else "")
        page = gw.manage("GET", f"/api/keys?{query}", mk).json()
        pages += [k["id"] for k in page["data"]]
        if not page["hasMore"]:
            break
        after = page["nextCursor"]
    assert pages == alice_keys

    # Relabelling a key moves its history with it (groups follow the label each key carries now).
    gw.manage("PATCH", f"/api/keys/{keys[2]['id']}", mk, {"endUser": "alice"})
    regrouped = {g["endUser"]: g for g in gw.manage("GET", "/api/usage?groupBy=endUser", mk).json()["data"]["endUsers"]}
    assert regrouped["alice"]["spentNanos"] == sum(spent["alice"]) + sum(spent["bob"]) and "bob" not in regrouped

    for query, param in (("groupBy=model", "groupBy"), ("endUser=" + "x" * 201, "endUser")):
        assert error(gw.manage("GET", f"/api/usage?{query}", mk)) == (400, param), query
    assert error(gw.manage("GET", "/api/keys?endUser=alice&after=key_nope", mk)) == (400, "after")
    other_id, other_mk, _ = reseller(gw, "other-reseller")
    theirs = gw.manage("GET", "/api/usage?endUser=alice&groupBy=endUser", other_mk).json()["data"]
    assert theirs["total"]["requests"] == 0 and theirs["endUsers"] == [] and keys[0]["id"] not in str(theirs)
    assert account_id != other_id


def test_the_cli_sets_and_filters_end_users(gw):
    account_id, mk, sub = reseller(gw, "cli-reseller")
    made = cli_json(gw, "keys", "create", account_id, "--name", "c1", "--subscription", sub, "--end-user", "acme",
                    "--metadata", '{"plan": "team"}', "--budget", "0.5", "--window", "1h")
    assert (made["end_user"], made["metadata"], made["budget"]) == ("acme", {"plan": "team"}, {"limit": "0.50", "window": "1h"})
    assert chat(gw, made["api_key"]).status_code == 200
    cli_json(gw, "keys", "create", account_id, "--name", "c2", "--subscription", sub)
    assert [k["id"] for k in cli_json(gw, "keys", "list", account_id, "--end-user", "acme")] == [made["id"]]
    updated = cli_json(gw, "keys", "update", account_id, made["id"], "--clear-end-user", "--metadata", '{"plan": "pro"}')
    assert (updated["end_user"], updated["metadata"]) == (None, {"plan": "pro"})
    api = gw.manage("GET", "/api/keys", mk).json()["data"]
    assert {k["id"]: (k["endUser"], k["metadata"]) for k in api}[made["id"]] == (None, {"plan": "pro"})
    done = subprocess.run([sys.executable, "-m", "tollgate", "keys", "update", account_id, made["id"], "--metadata",
                           '{"a": {"b": 1}}', "--config", str(gw.config_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 1 and "metadata" in done.stderr
