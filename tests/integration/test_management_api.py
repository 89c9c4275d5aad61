"""The management plane (mk_ keys): keys, billing, usage, and strict account scoping."""

import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.conftest import fake_config


def test_keys_create_list_revoke(gateway):
    account_id, mk = gateway.account()
    sub = gateway.subscribe(account_id)
    r = gateway.manage("POST", "/api/keys/subscription", mk, {"name": "prod", "subscriptionId": sub,
                                                              "budget": {"limit": "0.05", "window": "1h"}})
    assert r.status_code == 201, r.text
    key = r.json()["data"]
    assert key["apiKey"].startswith("sk_")
    assert (key["keyType"], key["keyPlan"], key["subscriptionId"]) == ("subscription", "standard", sub)
    assert key["budget"] == {"limit": "0.05", "limitNanos": 50_000_000, "window": "1h"}

    gateway.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": 5})
    r = gateway.manage("POST", "/api/keys/credit", mk, {"name": "mobile-app"})
    assert r.status_code == 201
    credit = r.json()["data"]
    assert (credit["keyType"], credit["keyPlan"]) == ("credit", "credits")

    listed = gateway.manage("GET", "/api/keys", mk).json()["data"]
    assert {k["id"] for k in listed} == {key["id"], credit["id"]}
    assert all("apiKey" not in k for k in listed)
    assert all(key["apiKey"] not in str(v) for k in listed for v in k.values())

    r = gateway.manage("DELETE", f"/api/keys/{key['id']}", mk)
    assert r.status_code == 200 and r.json()["data"]["isActive"] is False
    listed = {k["id"]: k for k in gateway.manage("GET", "/api/keys", mk).json()["data"]}
    assert listed[key["id"]]["isActive"] is False and listed[credit["id"]]["isActive"] is True

    # The revoked key is refused on its very next request.
    r = httpx.get(gateway.url + "/v1/usage", headers={"Authorization": f"Bearer {key['apiKey']}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_revoked"


def test_billing_status_cancel_and_credits(gateway):
    account_id, mk = gateway.account()
    sub = gateway.subscribe(account_id, "pro")
    gateway.manage("POST", "/api/keys/subscription", mk, {"name": "a", "subscriptionId": sub})
    gateway.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": "25"})
    status = gateway.manage("GET", "/api/billing/status", mk).json()["data"]
    assert (status["creditBalance"], status["creditBalanceNanos"]) == ("25.00", 25_000_000_000)
    [s] = status["subscriptions"]
    assert (s["id"], s["planSlug"], s["status"], s["keyCount"]) == (sub, "pro", "active", 1)
    assert s["budget"]["limit"] == "0.42" and s["budget"]["duration"] == "5h"
    assert s["budget"]["limitNanos"] == 420_000_000 and "window_start" in s["budget"]  # and its old name, for now

    r = gateway.manage("POST", "/api/billing/cancel", mk, {"subscriptionId": sub})
    assert r.status_code == 200
    assert (r.json()["data"]["status"], r.json()["data"]["cancelAtPeriodEnd"]) == ("canceled", True)
    credits = gateway.manage("GET", "/api/billing/credits", mk).json()["data"]
    assert credits["balance"] == "25.00" and credits["balanceNanos"] == 25_000_000_000
    plans = httpx.get(gateway.url + "/api/plans").json()["data"]
    assert {"standard", "pro"} <= {p["slug"] for p in plans}


def test_a_management_key_never_reaches_another_account(gateway):
    a_id, a_mk = gateway.account("a")
    b_id, b_mk = gateway.account("b")
    b_sub = gateway.subscribe(b_id)
    b_key = gateway.manage("POST", "/api/keys/subscription", b_mk, {"name": "b", "subscriptionId": b_sub}).json()["data"]
    a_sub = gateway.subscribe(a_id)

    attempts = [
        ("POST", "/api/keys/subscription", {"name": "steal", "subscriptionId": b_sub}),
        ("POST", "/api/keys", {"name": "steal", "subscriptionId": b_sub}),
        ("DELETE", f"/api/keys/{b_key['id']}", None),
        ("GET", f"/api/usage/{b_key['id']}", None),
        ("POST", "/api/billing/cancel", {"subscriptionId": b_sub}),
    ]
    for method, path, body in attempts:
        r = gateway.manage(method, path, a_mk, body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["success"] is False
    # What A can list never includes B's objects.
    for path in ("/api/keys", "/api/billing/status", "/api/usage", "/api/billing/credits"):
        r = gateway.manage("GET", path, a_mk)
        assert r.status_code == 200
        assert b_sub not in r.text and b_key["id"] not in r.text and b_id not in r.text
    # B's key and subscription are untouched.
    status = gateway.manage("GET", "/api/billing/status", b_mk).json()["data"]
    assert status["subscriptions"][0]["status"] == "active"
    assert gateway.manage("GET", "/api/keys", b_mk).json()["data"][0]["isActive"] is True
    assert a_sub


@pytest.mark.parametrize(
    "method, path, body, status, fragment",
    [
        ("POST", "/api/keys/subscription", {"name": "x"}, 400, "subscriptionId"),
        ("POST", "/api/keys/subscription", {"subscriptionId": "sub_x"}, 400, "name"),
        ("POST", "/api/keys/subscription", {"name": "x", "subscriptionId": 7}, 400, "subscriptionId"),
        ("POST", "/api/keys/subscription", {"name": "x", "subscriptionId": "sub_nope"}, 404, "subscription"),
        ("POST", "/api/keys/credit", {"name": ""}, 400, "name"),
        ("POST", "/api/keys", {"name": "x", "type": "gold"}, 400, "type"),
        ("POST", "/api/billing/cancel", {}, 400, "subscriptionId"),
        ("GET", "/api/usage/key_nope", None, 404, "key"),
        ("DELETE", "/api/keys/key_nope", None, 404, "key"),
    ],
)
def test_bad_management_requests_get_clear_4xx(gateway, method, path, body, status, fragment):
    _, mk = gateway.account()
    r = gateway.manage(method, path, mk, body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"]


def test_key_budget_input_is_checked(gateway):
    account_id, mk = gateway.account()
    sub = gateway.subscribe(account_id)
    for budget in ({"limit": "x"}, {"limit": -1}, {"limit": 1, "window": "soon"}, "cheap"):
        r = gateway.manage("POST", "/api/keys/subscription", mk, {"name": "x", "subscriptionId": sub, "budget": budget})
        assert r.status_code == 400, (budget, r.text)


def test_management_endpoints_need_a_management_key(gateway):
    key = gateway.key()
    for token in ("Basic", "mk_unknown", key["sk"], gateway.admin_token):
        r = httpx.get(gateway.url + "/api/keys", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.json()["success"] is False


# -- usage reports summed by the database, and pages of keys ------------------------------------------

DAY = 86400


def bulk_gateway(gateway_factory, fake_upstream):
    """The fake upstream behind a plan roomy enough for hundreds of requests."""
    config = fake_config(fake_upstream.url)
    config["plans"].append({"slug": "bulk", "window": "5h", "budget_per_window": "100", "rpm": 1_000_000,
                            "tpm": 1_000_000_000})
    return gateway_factory(config)


def summed(rows) -> dict:
    return {"spentNanos": sum(r["cost"] for r in rows), "requests": len(rows),
            "inputTokens": sum(r["input"] for r in rows), "outputTokens": sum(r["output"] for r in rows)}


def check_groups(report: dict, groups: tuple[str, ...]) -> None:
    """Every grouping of a report adds up to its total, period by period in order."""
    total = report["total"]
    for grouping in groups:
        periods = [g["period"] for g in report[grouping]]
        assert periods == sorted(set(periods)), grouping
        for field in ("spentNanos", "requests", "inputTokens", "outputTokens"):
            assert sum(g[field] for g in report[grouping]) == total[field], (grouping, field)


def test_usage_totals_and_groups_equal_the_requests_made(gateway_factory, fake_upstream):
    gw = bulk_gateway(gateway_factory, fake_upstream)
    account_id, mk = gw.account()
    sub = gw.subscribe(account_id, "bulk")
    keys = []
    for name, budget in (("plain", None), ("hourly", {"limit": "50", "window": "1h"}), ("idle", None)):
        body = {"name": name, "subscriptionId": sub, **({"budget": budget} if budget else {})}
        keys.append(gw.manage("POST", "/api/keys/subscription", mk, body).json()["data"])
    made: dict[str, list[dict]] = {keys[0]["id"]: [], keys[1]["id"]: []}
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        for n in range(300):
            key = keys[n % 2]
            r = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key['apiKey']}"},
                            json={"model": "fake-chat", "messages": [{"role": "user", "content": f"n{n} [[reply:{n % 7 + 1}]]"}]})
            assert r.status_code == 200, r.text
            made[key["id"]].append({"cost": int(r.headers["x-request-cost-nanos"]), "input": r.json()["usage"]["prompt_tokens"],
                                    "output": r.json()["usage"]["completion_tokens"]})

    account = gw.manage("GET", "/api/usage", mk).json()["data"]
    everything = made[keys[0]["id"]] + made[keys[1]["id"]]
    assert {f: account["total"][f] for f in summed(everything)} == summed(everything)
    check_groups(account, ("byDay", "byWeek", "byMonth"))
    per_key = {k["keyId"]: k for k in account["keys"]}
    listed = [k["id"] for k in gw.manage("GET", "/api/keys", mk).json()["data"]]
    assert [k["keyId"] for k in account["keys"]] == listed and sorted(listed) == sorted(k["id"] for k in keys)
    for key in keys:
        rows = made.get(key["id"], [])
        assert (per_key[key["id"]]["spentNanos"], per_key[key["id"]]["requests"]) == (sum(r["cost"] for r in rows), len(rows))
        report = gw.manage("GET", f"/api/usage/{key['id']}", mk).json()["data"]
        assert {f: report["total"][f] for f in summed(rows)} == summed(rows)
        check_groups(report, ("byWindow", "byDay", "byWeek", "byMonth"))
    hourly = gw.manage("GET", f"/api/usage/{keys[1]['id']}", mk).json()["data"]["byWindow"]
    start, end = (datetime.fromisoformat(t) for t in hourly[0]["period"].split("/"))
    assert end - start <= timedelta(hours=1) and start.minute == start.second == 0


def test_usage_sums_a_long_history_inserted_behind_the_gateway(gateway_factory, fake_upstream, tmp_path):
    """200,000 records written straight into the database of a stopped gateway (into `usage_inbox`, where an
    import puts them: the gateway rolls them into `usage_records` and the aggregates), then reported over HTTP.
    Raw records are kept for this one (no retention): the sums are checked to the second at the range's
    edges, which pruned history has only to the hour (tests/unit/test_retention.py)."""
    config = fake_config(fake_upstream.url)
    config["ledger"] = {"usage_retention_days": 0}
    config["server"] = {"database": f"sqlite:///{tmp_path / 'tollgate.db'}"}  # SQLite by name: written below
    gateway = gateway_factory(config)
    account_id, mk = gateway.account()
    gateway.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": 5})
    keys = [gateway.manage("POST", "/api/keys/credit", mk, {"name": f"k{n}"}).json()["data"]["id"] for n in range(3)]
    other_id, other_mk = gateway.account("other")
    assert gateway.stop() == 0

    now = time.time()
    rng = random.Random(13)
    rows = []
    for n in range(200_000):
        # Ages from an hour to 500 days, never within an hour of the 31- and 366-day cutoffs (the test takes seconds).
        age = rng.uniform(3600, 500 * DAY)
        if abs(age - 31 * DAY) < 3600 or abs(age - 366 * DAY) < 3600:
            age += 2 * 3600
        account, key = (other_id, "key_other") if n % 10 == 0 else (account_id, keys[n % 3])
        rows.append((f"req_bulk_{n}", now - age, account, key, "fake-chat", "chat", 200, rng.randint(1, 50_000),
                     rng.randint(1, 4_000), rng.randint(0, 10**12), 1.0, 0, 0))
    db = sqlite3.connect(tmp_path / "tollgate.db")
    with db:
        db.executemany("INSERT INTO usage_inbox (request_id, created_at, account_id, key_id, model, endpoint, status,"
                       " input_tokens, output_tokens, cost, latency_ms, estimated, stream) VALUES"
                       " (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.close()
    gateway.start("/health")

    def expected(since: float, until: float, key: str | None = None) -> tuple[dict, dict[str, int]]:
        chosen = [r for r in rows if r[2] == account_id and since <= r[1] < until and (key is None or r[3] == key)]
        days: dict[str, int] = {}
        for r in chosen:
            day = datetime.fromtimestamp(int(r[1]), tz=timezone.utc).strftime("%Y-%m-%d")
            days[day] = days.get(day, 0) + r[9]
        total = {"spentNanos": sum(r[9] for r in chosen), "requests": len(chosen),
                 "inputTokens": sum(r[7] for r in chosen), "outputTokens": sum(r[8] for r in chosen)}
        return total, days

    since, until = now - 300 * DAY, now - 20 * DAY
    query = f"since={since}&until={until}"
    report = gateway.manage("GET", f"/api/usage?{query}", mk).json()["data"]
    total, days = expected(since, until)
    assert {f: report["total"][f] for f in total} == total and total["requests"] > 100_000
    assert {g["period"]: g["spentNanos"] for g in report["byDay"]} == days
    check_groups(report, ("byDay", "byWeek", "byMonth"))
    assert sum(k["spentNanos"] for k in report["keys"]) == total["spentNanos"]
    assert datetime.fromisoformat(report["since"]).timestamp() == int(since)

    key_report = gateway.manage("GET", f"/api/usage/{keys[1]}?{query}", mk).json()["data"]
    key_total, key_days = expected(since, until, keys[1])
    assert {f: key_report["total"][f] for f in key_total} == key_total
    assert {g["period"]: g["spentNanos"] for g in key_report["byDay"]} == key_days
    assert [g["period"] for g in key_report["byWindow"]] == ["credits"]

    for days_back in (31, 366):
        path = "/api/usage" if days_back == 31 else "/api/usage?days=366"
        report = gateway.manage("GET", path, mk).json()["data"]
        total, _ = expected(now - days_back * DAY, now + DAY)
        assert {f: report["total"][f] for f in total} == total, days_back
    other = gateway.manage("GET", "/api/usage?days=366", other_mk).json()["data"]
    assert other["total"]["requests"] == sum(1 for r in rows if r[2] == other_id and r[1] >= now - 366 * DAY)
    assert account_id not in str(other) and keys[0] not in str(other)


@pytest.mark.parametrize(
    "query, param",
    [
        ("days=0", "days"), ("days=367", "days"), ("days=-3", "days"), ("days=1.5", "days"), ("days=ten", "days"),
        ("since=yesterday", "since"), ("until=2026-13-01", "until"), ("since=2026-03-01&until=2026-02-01", "since"),
        ("since=2024-01-01&until=2026-01-01", "since"), ("since=2026-01-01&days=3", "days"),
        ("until=99999999999999", "until"), ("days=" + "9" * 300, "days"),
    ],
)
def test_bad_usage_ranges_get_400_in_the_envelope(gateway, query, param):
    key = gateway.key()
    for path in ("/api/usage", f"/api/usage/{key['key_id']}", "/api/analytics/overhead"):
        r = gateway.manage("GET", f"{path}?{query}", key["mk"])
        assert r.status_code == 400, (path, query, r.text)
        body = r.json()
        assert body["success"] is False and body["error"]["param"] == param and param in body["error"]["message"]


def test_key_pages_walk_every_key_exactly_once(gateway):
    account_id, mk = gateway.account()
    gateway.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": 1})
    made = [gateway.manage("POST", "/api/keys/credit", mk, {"name": f"k{n}"}).json()["data"]["id"] for n in range(23)]
    other_id, other_mk = gateway.account("other")
    gateway.admin("POST", f"/admin/accounts/{other_id}/credits", {"amount": 1})
    foreign = gateway.manage("POST", "/api/keys/credit", other_mk, {"name": "theirs"}).json()["data"]["id"]

    everything = gateway.manage("GET", "/api/keys", mk).json()
    assert (everything["hasMore"], everything["nextCursor"]) == (False, None)
    assert sorted(k["id"] for k in everything["data"]) == sorted(made)
    for limit in (1, 4, 23):
        seen, cursor, pages = [], None, 0
        for _ in range(30):
            r = gateway.manage("GET", f"/api/keys?limit={limit}" + (f"&after={cursor}" if cursor else ""), mk).json()
            assert r["success"] is True and len(r["data"]) <= limit
            seen += [k["id"] for k in r["data"]]
            pages += 1
            if not r["hasMore"]:
                assert r["nextCursor"] is None
                break
            assert r["nextCursor"] == r["data"][-1]["id"]
            cursor = r["nextCursor"]
        assert seen == [k["id"] for k in everything["data"]], limit
        assert pages == -(-23 // limit)
    for query, param in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"), ("limit=-1", "limit"),
                         ("after=key_nope", "after"), (f"after={foreign}", "after"), ("after=" + "k" * 500, "after")):
        r = gateway.manage("GET", f"/api/keys?{query}", mk)
        assert r.status_code == 400, (query, r.text)
        assert r.json()["success"] is False and r.json()["error"]["param"] == param
        assert foreign not in r.text
