"""The dashboard in a real Chromium against a real gateway (issue 15): an owner signs in with a management
key, sees each key's window as the API reports it, creates and revokes a key from the page and reads the
request log (a 429 refusal row with its reason included); an API key sees its own; the operator sees
every account."""

from __future__ import annotations

import re

import httpx
import pytest

from tollgate.domain.money import format_usd

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails when a browser is required (tests/browser/conftest.py)
    expect = None


def chat(gw, sk: str, text: str, max_tokens: int = 16) -> int:
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                   json={"model": "fake-chat", "messages": [{"role": "user", "content": text}],
                         "max_tokens": max_tokens})
    return r.status_code


def spend_until_refused(gw, sk: str) -> None:
    for _ in range(50):
        status = chat(gw, sk, "spend [[reply:400]]", max_tokens=400)
        if status == 429:
            return
        assert status == 200
    raise AssertionError("the budget never ran out")


def sign_in(page, url: str, secret: str) -> None:
    page.goto(url + "/dashboard")
    page.get_by_test_id("signin-key").fill(secret)
    page.get_by_test_id("signin-submit").click()


@pytest.fixture
def owner(gateway) -> dict:
    """An account on the tiny plan with two keys: one spent to its 429, one with a few requests."""
    account, mk = gateway.account("owner")
    sub = gateway.subscribe(account, "tiny")
    keys = {}
    for name in ("agent", "app"):
        r = gateway.manage("POST", "/api/keys", mk, {"name": name, "subscriptionId": sub})
        assert r.status_code == 201, r.text
        keys[name] = r.json()["data"]
    for n in range(3):
        assert chat(gateway, keys["app"]["apiKey"], f"hello {n}") == 200
    spend_until_refused(gateway, keys["agent"]["apiKey"])
    return {"account": account, "mk": mk, "sub": sub, "keys": keys}


def test_an_owner_sees_the_windows_manages_keys_and_reads_the_log(gateway, owner, page):
    mk = owner["mk"]
    sign_in(page, gateway.url, mk)
    expect(page.get_by_test_id("owner-view")).to_be_visible()
    assert mk not in page.url
    assert page.evaluate("sessionStorage.getItem('tollgate.dashboard.key')") == mk
    assert page.evaluate("localStorage.length") == 0

    # Each key's bar shows the API's numbers (the subscription's pool, shared by both keys).
    budgets = {b["keyId"]: b["budget"] for b in gateway.manage("GET", "/api/budgets", mk).json()["data"]}
    for key in owner["keys"].values():
        bar = page.locator(f'[data-testid="key-bar"][data-key-id="{key["id"]}"]')
        budget = budgets[key["id"]]
        expect(bar.get_by_test_id("spent")).to_have_text(f"${budget['spent']} spent")
        expect(bar.get_by_test_id("remaining")).to_have_text(f"${budget['remaining']} remaining")
        expect(bar.get_by_test_id("limit")).to_have_text(f"${budget['limit']}")
        expect(bar.get_by_test_id("countdown")).to_have_text(re.compile(r"^resets in (\d+h )?\d\dm \d\ds$"))
    status = gateway.manage("GET", "/api/billing/status", mk).json()["data"]
    expect(page.get_by_test_id("credits")).to_have_text(f"${status['creditBalance']}")
    expect(page.get_by_test_id("subscription-row")).to_have_count(1)

    # The request log: one row per request, the 429 with its reason; the refusals list shows it too.
    rows = gateway.manage("GET", "/api/requests?limit=500", mk).json()["data"]
    expect(page.get_by_test_id("log-row")).to_have_count(len(rows))
    refused = page.locator('[data-testid="log-row"][data-status="429"]')
    expect(refused).to_have_count(1)
    expect(refused.get_by_test_id("log-reason")).to_have_text("budget_exceeded")
    expect(page.get_by_test_id("refusal-reason")).to_have_text(["budget_exceeded"])
    page.get_by_test_id("log-key").select_option(owner["keys"]["app"]["id"])
    page.get_by_test_id("log-apply").click()
    expect(page.get_by_test_id("log-row")).to_have_count(3)
    page.get_by_test_id("log-key").select_option("")
    page.get_by_test_id("log-status").select_option("429")
    page.get_by_test_id("log-apply").click()
    expect(page.get_by_test_id("log-row")).to_have_count(1)

    # Charts drew from the hourly aggregates: one legend entry per key that spent.
    expect(page.get_by_test_id("chart-key").get_by_test_id("legend-item")).to_have_count(2)
    expect(page.get_by_test_id("chart-model").get_by_test_id("legend-item")).to_have_count(1)

    # Create a key from the page: its secret is shown once, it is listed, and it works.
    page.get_by_test_id("create-name").fill("from-page <b>bold</b>")
    page.get_by_test_id("create-submit").click()
    expect(page.get_by_test_id("new-secret")).to_be_visible()
    secret = page.get_by_test_id("new-secret-value").text_content()
    assert secret.startswith("sk_")
    row = page.locator('[data-testid="key-row"][data-name="from-page <b>bold</b>"]')
    expect(row.get_by_test_id("key-name")).to_have_text("from-page <b>bold</b>")  # text, never markup
    assert row.locator("b").count() == 0
    listed = {k["name"]: k for k in gateway.manage("GET", "/api/keys", mk).json()["data"]}
    assert listed["from-page <b>bold</b>"]["isActive"] is True
    assert httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    # Revoke it from the page, after the confirmation.
    row.get_by_test_id("revoke").click()
    row.get_by_test_id("confirm").click()
    expect(row.get_by_test_id("key-state")).to_have_text(re.compile(r"^revoked"))
    listed = {k["name"]: k for k in gateway.manage("GET", "/api/keys", mk).json()["data"]}
    assert listed["from-page <b>bold</b>"]["isActive"] is False
    r = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_revoked"

    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('tollgate.dashboard.key')") is None


def test_an_api_key_sees_its_own_window_and_requests(gateway, owner, page):
    app = owner["keys"]["app"]
    sign_in(page, gateway.url, app["apiKey"])
    expect(page.get_by_test_id("key-view")).to_be_visible()
    expect(page.get_by_test_id("owner-view")).to_be_hidden()
    usage = httpx.get(gateway.url + "/v1/usage", headers={"Authorization": f"Bearer {app['apiKey']}"}).json()
    bar = page.get_by_test_id("key-bar")
    expect(bar.get_by_test_id("spent")).to_have_text(f"${format_usd(usage['budget']['spent_nanos'])} spent")
    expect(bar.get_by_test_id("countdown")).to_have_text(re.compile(r"^resets in "))
    expect(page.get_by_test_id("log-row")).to_have_count(3)  # its own three; never the other key's


def test_a_wrong_key_is_refused_on_the_page(gateway, page):
    sign_in(page, gateway.url, "mk_not_a_real_key")
    expect(page.get_by_test_id("signin-error")).to_contain_text("Not signed in")
    expect(page.get_by_test_id("owner-view")).to_be_hidden()


def test_the_operator_sees_every_account_and_the_live_counters(gateway, owner, page):
    sign_in(page, gateway.url, gateway.admin_token)
    expect(page.get_by_test_id("operator-view")).to_be_visible()
    accounts = {a["accountId"]: a for a in gateway.admin("GET", "/admin/usage/accounts").json()["data"]}
    row = page.locator(f'[data-testid="op-account-row"][data-account-id="{owner["account"]}"]')
    expect(row.get_by_test_id("op-account-spend")).to_have_text(f"${accounts[owner['account']]['cost']}")
    expect(page.get_by_test_id("op-reservations")).to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_test_id("log-row")).to_have_count(
        len(gateway.admin("GET", "/admin/requests?limit=50").json()["data"]))
    traffic = gateway.admin("GET", "/admin/metrics/traffic")
    if traffic.status_code == 404:  # a gateway without the traffic counters says so on the page
        expect(page.get_by_test_id("op-traffic-note")).to_be_visible()
        return
    data = traffic.json()["data"]
    expect(page.get_by_test_id("op-upstream-row")).to_have_count(len(data["upstreams"]))
    assert data["refusals"].get("budget_exceeded", 0) >= 1
    reasons = page.get_by_test_id("op-refusal-row")
    expect(reasons.filter(has_text="budget_exceeded")).to_have_count(1)
