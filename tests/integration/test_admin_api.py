"""The operator plane over HTTP against the real gateway process."""

import httpx
import pytest


def test_account_subscription_credits_lifecycle(gateway):
    r = gateway.admin("POST", "/admin/accounts", {"name": "acme"})
    assert r.status_code == 201
    data = r.json()
    assert data["success"] is True
    account = data["data"]
    assert account["managementKey"].startswith("mk_")
    assert account["name"] == "acme"

    listed = gateway.admin("GET", "/admin/accounts").json()["data"]
    assert [a["id"] for a in listed] == [account["id"]]
    assert "managementKey" not in listed[0]

    r = gateway.admin("POST", f"/admin/accounts/{account['id']}/subscriptions", {"plan": "standard", "periodDays": 7})
    assert r.status_code == 201
    sub = r.json()["data"]
    assert (sub["plan"], sub["status"], sub["cancelAtPeriodEnd"]) == ("standard", "active", False)

    r = gateway.admin("POST", f"/admin/accounts/{account['id']}/credits", {"amount": "12.50"})
    assert r.status_code == 200
    assert (r.json()["data"]["creditBalance"], r.json()["data"]["creditBalanceNanos"]) == ("12.50", 12_500_000_000)
    r = gateway.admin("POST", f"/admin/accounts/{account['id']}/credits", {"amount": 0.25})
    assert r.json()["data"]["creditBalance"] == "12.75"

    r = gateway.admin("POST", f"/admin/subscriptions/{sub['id']}/cancel")
    assert r.json()["data"]["status"] == "canceled"
    assert r.json()["data"]["cancelAtPeriodEnd"] is True
    r = gateway.admin("POST", f"/admin/subscriptions/{sub['id']}/expire")
    assert r.json()["data"]["status"] == "expired"

    shown = gateway.admin("GET", f"/admin/accounts/{account['id']}").json()["data"]
    assert [s["status"] for s in shown["subscriptions"]] == ["expired"]
    assert len(shown["managementKeys"]) == 1

    r = gateway.admin("POST", f"/admin/accounts/{account['id']}/management-keys", {"name": "ci"})
    assert r.status_code == 201
    assert r.json()["data"]["managementKey"].startswith("mk_")


def test_operator_can_add_plans_but_not_override_config_plans(gateway):
    r = gateway.admin("POST", "/admin/plans", {"slug": "mini", "budgetPerWindow": "0.05", "window": "1h", "rpm": 10})
    assert r.status_code == 201, r.text
    plan = r.json()["data"]
    assert (plan["window"], plan["budgetPerWindow"], plan["budgetPerWindowNanos"], plan["rpm"]) == \
        ("1h", "0.05", 50_000_000, 10)
    slugs = [p["slug"] for p in gateway.admin("GET", "/admin/plans").json()["data"]]
    assert {"standard", "pro", "tiny", "mini"} <= set(slugs)
    r = gateway.admin("POST", "/admin/plans", {"slug": "standard", "budgetPerWindow": 1})
    assert r.status_code == 409
    assert r.json()["success"] is False


@pytest.mark.parametrize(
    "method, path, body, status, fragment",
    [
        ("POST", "/admin/accounts", {}, 400, "name"),
        ("POST", "/admin/accounts", {"name": 42}, 400, "name"),
        ("POST", "/admin/accounts", None, 400, "empty"),
        ("POST", "/admin/accounts/acct_nope/subscriptions", {"plan": "standard"}, 404, "account"),
        ("POST", "/admin/plans", {"slug": "x", "budgetPerWindow": "lots"}, 400, "budgetPerWindow"),
        ("POST", "/admin/plans", {"slug": "x", "budgetPerWindow": 1, "window": "forever"}, 400, "window"),
        ("DELETE", "/admin/accounts", None, 405, "not allowed"),
        ("GET", "/admin/nothing-here", None, 404, "no endpoint"),
    ],
)
def test_bad_operator_requests_get_clear_4xx_in_the_envelope(gateway, method, path, body, status, fragment):
    r = gateway.admin(method, path, body)
    assert r.status_code == status
    payload = r.json()
    assert payload["success"] is False
    assert fragment in payload["error"]["message"]
    assert payload["error"]["code"]


def test_subscription_grant_checks_its_input(gateway):
    account_id, _ = gateway.account()
    cases = [
        ({"plan": "gold"}, 404, "plan"),
        ({}, 400, "plan"),
        ({"plan": 3}, 400, "plan"),
        ({"plan": "standard", "periodDays": "thirty"}, 400, "periodDays"),
        ({"plan": "standard", "periodDays": 0}, 400, "periodDays"),
    ]
    for body, status, fragment in cases:
        r = gateway.admin("POST", f"/admin/accounts/{account_id}/subscriptions", body)
        assert r.status_code == status, (body, r.text)
        assert fragment in r.json()["error"]["message"]
    for amount in (-5, 0, "ten", 0.0000000001, True):
        r = gateway.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": amount})
        assert r.status_code == 400, (amount, r.text)


def test_operator_token_is_required(gateway):
    for token in ("wrong", "sk_not_an_admin_token", "tga_almost_" + gateway.admin_token):
        r = gateway.admin("GET", "/admin/accounts", token=token)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_admin_token"
    assert httpx.get(gateway.url + "/admin/accounts").status_code == 401
    account_id, mk = gateway.account()
    # A management key is not an operator token.
    assert gateway.admin("GET", "/admin/accounts", token=mk).status_code == 401


def test_malformed_json_and_oversized_bodies_are_4xx(gateway):
    headers = {"Authorization": f"Bearer {gateway.admin_token}", "Content-Type": "application/json"}
    r = httpx.post(gateway.url + "/admin/accounts", content=b"{not json", headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(gateway.url + "/admin/accounts", content=b'{"name": "' + b"x" * (9 * 1024 * 1024) + b'"}',
                   headers=headers)
    assert r.status_code == 413


def test_account_pages_walk_every_account_exactly_once(gateway):
    made = [gateway.account(f"acme-{n}")[0] for n in range(11)]
    everything = gateway.admin("GET", "/admin/accounts").json()
    assert (everything["hasMore"], everything["nextCursor"]) == (False, None)
    assert sorted(a["id"] for a in everything["data"]) == sorted(made)
    for limit in (1, 3, 11):
        seen, cursor = [], None
        for _ in range(20):
            page = gateway.admin("GET", f"/admin/accounts?limit={limit}" + (f"&after={cursor}" if cursor else "")).json()
            assert page["success"] is True and 0 < len(page["data"]) <= limit
            seen += [a["id"] for a in page["data"]]
            if not page["hasMore"]:
                assert page["nextCursor"] is None
                break
            cursor = page["nextCursor"]
            assert cursor == page["data"][-1]["id"]
        assert seen == [a["id"] for a in everything["data"]], limit
    for query, param in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=many", "limit"),
                         ("after=acct_nope", "after")):
        r = gateway.admin("GET", f"/admin/accounts?{query}")
        assert r.status_code == 400, (query, r.text)
        assert r.json()["success"] is False and r.json()["error"]["param"] == param
