"""The management plane (mk_ keys): keys, billing, usage, and strict account scoping."""

import httpx
import pytest


def test_keys_create_list_revoke(gateway):
    account_id, mk = gateway.account()
    sub = gateway.subscribe(account_id)
    r = gateway.manage("POST", "/api/keys/subscription", mk, {"name": "prod", "subscriptionId": sub,
                                                              "budget": {"limit": "0.05", "window": "1h"}})
    assert r.status_code == 201, r.text
    key = r.json()["data"]
    assert key["apiKey"].startswith("sk_")
    assert (key["keyType"], key["keyPlan"], key["subscriptionId"]) == ("subscription", "standard", sub)
    assert key["budget"] == {"limit": 0.05, "window": "1h"}

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
    assert status["creditBalance"] == 25
    [s] = status["subscriptions"]
    assert (s["id"], s["planSlug"], s["status"], s["keyCount"]) == (sub, "pro", "active", 1)
    assert s["budget"]["limit"] == 0.42 and s["budget"]["duration"] == "5h"

    r = gateway.manage("POST", "/api/billing/cancel", mk, {"subscriptionId": sub})
    assert r.status_code == 200
    assert (r.json()["data"]["status"], r.json()["data"]["cancelAtPeriodEnd"]) == ("canceled", True)
    credits = gateway.manage("GET", "/api/billing/credits", mk).json()["data"]
    assert credits["balance"] == 25 and credits["balanceNanos"] == 25_000_000_000
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
