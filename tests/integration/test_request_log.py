"""The request log (`/api/requests`, `/admin/requests`, `/v1/requests`) and usage over time
(`/api/usage/hourly`, `/admin/usage/accounts`, `/api/budgets`) over HTTP, on a real gateway (issue 15)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import httpx

from tests.support.processes import Gateway


def chat(gw: Gateway, sk: str, text: str = "hello there", stream: bool = False, model: str = "fake-chat",
         max_tokens: int = 16) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {sk}"}) as r:
            r.read()
            return r.status_code
    r = httpx.post(gw.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {sk}"}, timeout=30)
    return r.status_code


def new_key(gw: Gateway, mk: str, sub: str, name: str) -> dict:
    r = gw.manage("POST", "/api/keys", mk, {"name": name, "subscriptionId": sub})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def walk(gw: Gateway, path: str, token: str, limit: int, cursor: str = "before", **filters) -> list[dict]:
    """Every row of a list, page by page through `nextCursor`, sent back as `cursor` (bounded)."""
    rows, before = [], None
    for _ in range(200):
        params = {**filters, "limit": limit, **({cursor: before} if before else {})}
        r = httpx.get(gw.url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= limit
        rows += page["data"]
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            return rows
        before = page["nextCursor"]
    raise AssertionError("the log never ended")


def get(gw: Gateway, path: str, token: str, **params) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_the_request_log_filters_pages_and_scopes(gateway):
    account, mk = gateway.account("a")
    sub = gateway.subscribe(account)
    k1, k2 = new_key(gateway, mk, sub, "one"), new_key(gateway, mk, sub, "two")
    other, other_mk = gateway.account("b")
    other_key = new_key(gateway, other_mk, gateway.subscribe(other), "theirs")

    for _ in range(5):
        assert chat(gateway, k1["apiKey"]) == 200
    for _ in range(2):
        assert chat(gateway, k1["apiKey"], stream=True) == 200
    assert chat(gateway, k1["apiKey"], "refuse [[status:400]]") == 400  # the upstream's 4xx: passed on, recorded
    for _ in range(3):
        assert chat(gateway, k2["apiKey"], model="fc") == 200  # an alias: recorded as the model it names
    r = httpx.post(gateway.url + "/v1/embeddings", json={"model": "fake-embed", "input": "two words"},
                   headers={"Authorization": f"Bearer {k2['apiKey']}"}, timeout=30)
    assert r.status_code == 200, r.text
    for _ in range(2):
        assert chat(gateway, other_key["apiKey"]) == 200

    rows = walk(gateway, "/api/requests", mk, 50)
    assert len(rows) == 12
    assert {r["accountId"] for r in rows} == {account}
    assert [r["createdAt"] for r in rows] == sorted((r["createdAt"] for r in rows), reverse=True)
    assert Counter(r["keyId"] for r in rows) == {k1["id"]: 8, k2["id"]: 4}
    assert {r["keyName"] for r in rows} == {"one", "two"}
    for r in rows:
        assert r["cost"] is not None and isinstance(r["costNanos"], int)
        assert r["createdAt"].endswith("Z") and r["latencyMs"] >= 0
        assert "requestText" not in r
    streamed = [r for r in rows if r["stream"]]
    assert len(streamed) == 2 and all(r["ttftMs"] is not None and 0 <= r["ttftMs"] <= r["latencyMs"] for r in streamed)
    assert all(r["ttftMs"] is None for r in rows if not r["stream"])
    [refused] = [r for r in rows if r["status"] != 200]
    assert refused["status"] == 400 and refused["costNanos"] == 0 and refused["error"]

    # Walking the log in small pages sees every record once, in the same order.
    paged = walk(gateway, "/api/requests", mk, 5)
    assert [r["id"] for r in paged] == [r["id"] for r in rows]

    # Filters.
    assert {r["keyId"] for r in walk(gateway, "/api/requests", mk, 3, keyId=k2["id"])} == {k2["id"]}
    assert len(walk(gateway, "/api/requests", mk, 3, keyId=k2["id"])) == 4
    assert len(walk(gateway, "/api/requests", mk, 50, model="fake-embed")) == 1
    assert len(walk(gateway, "/api/requests", mk, 50, model="fake-chat")) == 11
    assert len(walk(gateway, "/api/requests", mk, 50, model="fake-upstream-chat")) == 11  # the model used
    assert [r["status"] for r in walk(gateway, "/api/requests", mk, 50, status="4xx")] == [400]
    assert len(walk(gateway, "/api/requests", mk, 50, status="2xx")) == 11
    assert len(walk(gateway, "/api/requests", mk, 4, status="200", keyId=k1["id"])) == 7
    assert walk(gateway, "/api/requests", mk, 50, since=int(time.time()) + 3600) == []
    assert walk(gateway, "/api/requests", mk, 50, until="2020-01-01T00:00:00Z") == []
    assert len(walk(gateway, "/api/requests", mk, 50, since="2020-01-01", until=int(time.time()) + 60)) == 12

    # Scoping: another account's records, keys and cursors are never visible.
    theirs = walk(gateway, "/api/requests", other_mk, 50)
    assert len(theirs) == 2 and {r["accountId"] for r in theirs} == {other}
    assert get(gateway, "/api/requests", other_mk, keyId=k1["id"]).status_code == 404
    assert get(gateway, "/api/requests", other_mk, before=rows[3]["id"]).status_code == 400
    assert get(gateway, "/api/requests", k1["apiKey"]).status_code == 401  # a consumption key: not here
    assert get(gateway, "/api/requests", gateway.admin_token).status_code == 401

    # A consumption key reads its own requests, and nothing else of its account.
    own = walk(gateway, "/v1/requests", k2["apiKey"], 2)
    assert [r["id"] for r in own] == [r["id"] for r in rows if r["keyId"] == k2["id"]]
    assert get(gateway, "/v1/requests", k2["apiKey"], keyId=k1["id"]).status_code == 400
    assert get(gateway, "/v1/requests", mk).status_code == 401

    # The operator: any account, one account, never with a management key.
    everything = walk(gateway, "/admin/requests", gateway.admin_token, 4)
    assert {r["id"] for r in rows} | {r["id"] for r in theirs} <= {r["id"] for r in everything}
    ids = [r["id"] for r in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    assert [r["id"] for r in walk(gateway, "/admin/requests", gateway.admin_token, 5, accountId=account)] == \
        [r["id"] for r in rows]
    assert len(walk(gateway, "/admin/requests", gateway.admin_token, 5, keyId=k1["id"])) == 8
    assert get(gateway, "/admin/requests", gateway.admin_token, accountId="acct_nope").status_code == 404
    assert get(gateway, "/admin/requests", mk).status_code == 401

    # Malformed parameters are 400s naming the parameter.
    for params, param in (({"status": "abc"}, "status"), ({"limit": 501}, "limit"), ({"before": "x1"}, "before"),
                          ({"since": "yesterday"}, "since")):
        r = get(gateway, "/api/requests", mk, **params)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_usage_over_time_adds_up_to_the_records_to_the_nano_dollar(gateway):
    account, mk = gateway.account("series")
    sub = gateway.subscribe(account)
    k1, k2 = new_key(gateway, mk, sub, "one"), new_key(gateway, mk, sub, "two")
    for n in range(4):
        assert chat(gateway, k1["apiKey"], f"count {n} [[reply:{3 + n}]]") == 200
    assert chat(gateway, k2["apiKey"], "streamed [[reply:5]]", stream=True) == 200
    assert chat(gateway, k2["apiKey"], "no [[status:400]]") == 400

    rows = walk(gateway, "/api/requests", mk, 50)
    assert len(rows) == 6
    by_key: dict[str, int] = defaultdict(int)
    by_model: dict[str, int] = defaultdict(int)
    for r in rows:
        by_key[r["keyId"]] += r["costNanos"]
        by_model[r["model"]] += r["costNanos"]
    total = sum(by_key.values())
    assert total > 0

    for bucket in ("hour", "day"):
        series = get(gateway, "/api/usage/hourly", mk, days=2, groupBy="key", bucket=bucket).json()["data"]
        assert (series["bucket"], series["groupBy"]) == (bucket, "key")
        assert {g["group"]: g["costNanos"] for g in series["groups"]} == by_key
        assert {g["group"]: g["name"] for g in series["groups"]} == {k1["id"]: "one", k2["id"]: "two"}
        assert sum(p["costNanos"] for p in series["points"]) == total == series["total"]["costNanos"]
        assert series["total"]["requests"] == 6 and series["total"]["errors"] == 1
        # Asked again: the hours that can no longer change come from the gateway's memory (http/series_cache.py),
        # the live ones from the store, and the answer is the same.
        again = get(gateway, "/api/usage/hourly", mk, days=2, groupBy="key", bucket=bucket).json()["data"]
        assert (again["points"], again["groups"], again["total"]) == (series["points"], series["groups"],
                                                                      series["total"])
    by_model_series = get(gateway, "/api/usage/hourly", mk, groupBy="model").json()["data"]
    assert {g["group"]: g["costNanos"] for g in by_model_series["groups"]} == by_model
    routes = get(gateway, "/api/usage/hourly", mk, groupBy="route").json()["data"]
    assert [(g["group"], g["requests"]) for g in routes["groups"]] == [(None, 6)]  # no `auto` here
    one = get(gateway, "/api/usage/hourly", mk, keyId=k1["id"]).json()["data"]
    assert one["total"]["costNanos"] == by_key[k1["id"]] and one["groupBy"] is None
    statuses = get(gateway, "/api/usage/hourly", mk, groupBy="status").json()["data"]
    assert {g["group"]: g["requests"] for g in statuses["groups"]} == {200: 5, 400: 1}

    # Refused: a long range in hours, an unknown grouping, another account's key, a consumption key.
    assert get(gateway, "/api/usage/hourly", mk, days=90, bucket="hour").status_code == 400
    assert get(gateway, "/api/usage/hourly", mk, groupBy="colour").status_code == 400
    _, other_mk = gateway.account("other")
    assert get(gateway, "/api/usage/hourly", other_mk, keyId=k1["id"]).status_code == 404
    assert get(gateway, "/api/usage/hourly", k1["apiKey"]).status_code == 401

    # The operator: the same series for the account, and every account's spend.
    admin = gateway.admin_token
    assert get(gateway, "/admin/usage/hourly", admin, accountId=account, groupBy="key").json()["data"]["groups"] == \
        get(gateway, "/api/usage/hourly", mk, groupBy="key").json()["data"]["groups"]
    assert get(gateway, "/admin/usage/hourly", admin).status_code == 400
    accounts = {a["accountId"]: a for a in walk(gateway, "/admin/usage/accounts", admin, 1, "after", days=1)}
    assert accounts[account]["costNanos"] == total and accounts[account]["requests"] == 6
    assert accounts[account]["name"] == "series"
    assert get(gateway, "/admin/usage/accounts", mk).status_code == 401

    # Each key's budget now: its subscription's pool, as the billing status shows it.
    status = gateway.manage("GET", "/api/billing/status", mk).json()["data"]
    pool = status["subscriptions"][0]["budget"]
    budgets = get(gateway, "/api/budgets", mk).json()
    # Keys oldest first, then by id: two keys made in the same second come in either order.
    assert sorted(b["keyId"] for b in budgets["data"]) == sorted([k1["id"], k2["id"]]) and budgets["hasMore"] is False
    window_holds_every_record = pool["windowStart"] <= min(r["createdAt"] for r in rows)  # (not across a reset)
    for b in budgets["data"]:
        assert b["budget"]["kind"] == "subscription"
        assert b["budget"]["spentNanos"] == pool["spentNanos"]
        assert b["budget"]["spentNanos"] == total or not window_holds_every_record
        assert b["budget"]["limitNanos"] == pool["limitNanos"]
        assert b["budget"]["resetsAt"] == pool["resetsAt"]
        assert b["budget"]["remainingNanos"] + b["budget"]["spentNanos"] + b["budget"]["reservedNanos"] == \
            b["budget"]["limitNanos"]
    gateway.manage("DELETE", f"/api/keys/{k2['id']}", mk)
    revoked = next(b for b in get(gateway, "/api/budgets", mk).json()["data"] if b["keyId"] == k2["id"])
    assert (revoked["isActive"], revoked["budget"], revoked["pools"]) == (False, None, [])


def test_a_budget_refusal_is_logged_with_its_reason(gateway):
    key = gateway.key(plan="tiny")
    for _ in range(50):
        status = chat(gateway, key["sk"], "spend [[reply:400]]", max_tokens=400)
        if status == 429:
            break
        assert status == 200
    else:
        raise AssertionError("the budget never ran out")
    [row] = walk(gateway, "/api/requests", key["mk"], 10, status="429")
    assert (row["error"], row["costNanos"], row["keyId"]) == ("budget_exceeded", 0, key["key_id"])
    assert walk(gateway, "/v1/requests", key["sk"], 10, status="4xx") == [row]


def test_the_dashboard_is_served_from_the_package_with_a_strict_policy(gateway):
    r = httpx.get(gateway.url + "/dashboard", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    page = r.text
    assert '<script src="/dashboard/static/app.js" defer></script>' in page
    assert page.count("<script") == 1 and " on" + "click=" not in page and "style=" not in page  # nothing inline
    for path, kind in (("/dashboard/static/app.js", "text/javascript"), ("/dashboard/static/style.css", "text/css")):
        asset = httpx.get(gateway.url + path, timeout=30)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert asset.headers["content-security-policy"] == policy
    script = httpx.get(gateway.url + "/dashboard/static/app.js", timeout=30).text
    assert "innerHTML" not in script and "localStorage" not in script  # text only; the key in sessionStorage only
    assert httpx.get(gateway.url + "/dashboard/static/nope.js", timeout=30).status_code == 404
