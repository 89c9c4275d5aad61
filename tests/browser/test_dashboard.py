"""The dashboard in a real Chromium against a real gateway (issue 15): an owner signs in with a management
key, sees each key's window as the API reports it, watches a key's bar move after a request made through
the API and its countdown run, creates, rotates and revokes a key from the page, finds a request in the
log with the cost the API answered, and a refusal with its reason; an API key sees its own; the operator
sees every account.

Money is compared as the API writes it (decimal strings, or their integer nano-dollars), never as floats.
Every wait is Playwright's, bounded; nothing is asserted on time."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest

from tollgate.domain.money import format_usd

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails when a browser is required (tests/browser/conftest.py)
    expect = None


def chat_response(gw, sk: str, text: str, max_tokens: int = 16) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "fake-chat", "messages": [{"role": "user", "content": text}],
                            "max_tokens": max_tokens})


def chat(gw, sk: str, text: str, max_tokens: int = 16) -> int:
    return chat_response(gw, sk, text, max_tokens).status_code


def spend_until_refused(gw, sk: str) -> httpx.Response:
    """Requests until the budget refuses one (bounded); that 429."""
    for _ in range(50):
        r = chat_response(gw, sk, "spend [[reply:400]]", max_tokens=400)
        if r.status_code == 429:
            return r
        assert r.status_code == 200, r.text
    raise AssertionError("the budget never ran out")


def works(gw, secret: str) -> int:
    return httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=30).status_code


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
    refused = spend_until_refused(gateway, keys["agent"]["apiKey"])
    return {"account": account, "mk": mk, "sub": sub, "keys": keys, "refused": refused}


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
    # That row, and the refusals' one, are the very 429 the client was answered: its request id, its code.
    answer = owner["refused"]
    request_id, code = answer.headers["x-request-id"], answer.json()["error"]["code"]
    assert code == "budget_exceeded"
    row_429 = page.locator(f'[data-testid="log-row"][data-request-id="{request_id}"]')
    expect(row_429.get_by_test_id("log-status-code")).to_have_text("429")
    expect(row_429.get_by_test_id("log-reason")).to_have_text(code)
    refusal = page.locator(f'[data-testid="refusal-row"][data-request-id="{request_id}"]')
    expect(refusal.get_by_test_id("refusal-status")).to_have_text("429")
    expect(refusal.get_by_test_id("refusal-reason")).to_have_text(code)
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
    assert works(gateway, secret) == 200
    page.locator("#new-secret-close").click()
    expect(page.get_by_test_id("new-secret")).to_be_hidden()

    # Rotate it from the page, after the confirmation: the new secret is shown once; during the grace
    # both the old and the new secret work.
    row.get_by_test_id("rotate").click()
    row.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("new-secret")).to_be_visible()
    expect(page.get_by_test_id("new-secret-value")).not_to_have_text(secret)
    rotated = page.get_by_test_id("new-secret-value").text_content()
    assert rotated.startswith("sk_") and rotated != secret
    expect(page.locator("#new-secret-label")).to_contain_text("the old one works until")
    listed = {k["name"]: k for k in gateway.manage("GET", "/api/keys", mk).json()["data"]}
    key = listed["from-page <b>bold</b>"]
    assert key["isActive"] is True and key["rotatedAt"] and key["previousSecretValidUntil"]
    assert rotated.startswith(key["prefix"].rstrip("…"))
    assert works(gateway, rotated) == 200 and works(gateway, secret) == 200
    page.locator("#new-secret-close").click()
    expect(page.get_by_test_id("new-secret-value")).to_have_text("")

    # Revoke it from the page, after the confirmation: both secrets are refused from then on.
    row.get_by_test_id("revoke").click()
    row.get_by_test_id("confirm").click()
    expect(row.get_by_test_id("key-state")).to_have_text(re.compile(r"^revoked"))
    listed = {k["name"]: k for k in gateway.manage("GET", "/api/keys", mk).json()["data"]}
    assert listed["from-page <b>bold</b>"]["isActive"] is False
    r = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {rotated}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_revoked"
    assert works(gateway, secret) in (401, 403)
    assert chat(gateway, rotated, "hello") in (401, 403) and chat(gateway, secret, "hello") in (401, 403)

    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('tollgate.dashboard.key')") is None


def bar_width(bar) -> float:
    """The spent part's width, in percent of the limit (the page sizes bars with numbers; money is text)."""
    return float(bar.locator(".bar .spent").evaluate("node => node.style.width").rstrip("%") or 0)


def test_a_keys_bar_moves_after_a_request_and_its_countdown_runs(gateway, page):
    account, mk = gateway.account("live")
    sub = gateway.subscribe(account, "standard")
    r = gateway.manage("POST", "/api/keys", mk, {"name": "live", "subscriptionId": sub,
                                                 "budget": {"limit": "0.001", "window": "1h"}})
    assert r.status_code == 201, r.text
    key = r.json()["data"]

    def budget() -> dict:
        [found] = [b["budget"] for b in gateway.manage("GET", "/api/budgets", mk).json()["data"]
                   if b["keyId"] == key["id"]]
        return found

    sign_in(page, gateway.url, mk)
    bar = page.locator(f'[data-testid="key-bar"][data-key-id="{key["id"]}"]')
    before = budget()
    expect(bar.get_by_test_id("spent")).to_have_text(f"${before['spent']} spent")
    expect(bar.get_by_test_id("limit")).to_have_text("$0.001")
    width_before = bar_width(bar)

    # A request through the API with that key: the bar moves by exactly what it cost, on the page's own
    # refresh of the bars (every 15 s; no click).
    answer = chat_response(gateway, key["apiKey"], "move the bar [[reply:100]]", max_tokens=100)
    assert answer.status_code == 200, answer.text
    cost, cost_nanos = answer.headers["x-request-cost"], int(answer.headers["x-request-cost-nanos"])
    assert cost_nanos > 0 and Decimal(cost) == Decimal(cost_nanos) / 10**9
    after = budget()
    assert Decimal(after["spent"]) == Decimal(before["spent"]) + Decimal(cost)
    assert after["spentNanos"] == before["spentNanos"] + cost_nanos
    assert after["spent"] == format_usd(before["spentNanos"] + cost_nanos)
    expect(bar.get_by_test_id("spent")).to_have_text(f"${after['spent']} spent", timeout=30_000)
    expect(bar.get_by_test_id("remaining")).to_have_text(f"${after['remaining']} remaining")
    assert bar_width(bar) > width_before

    # The countdown to the window's reset runs on its own (a bounded wait for its text to change).
    countdown = bar.get_by_test_id("countdown")
    expect(countdown).to_have_text(re.compile(r"^resets in (\d+h )?\d\dm \d\ds$"))
    shown = countdown.text_content()
    expect(countdown).not_to_have_text(shown)
    expect(countdown).to_have_text(re.compile(r"^resets in (\d+h )?\d\dm \d\ds$"))

    # The request is in the log (after "Refresh") with the cost the client was told.
    request_id = answer.headers["x-request-id"]
    [logged] = [r for r in gateway.manage("GET", "/api/requests?limit=50", mk).json()["data"]
                if r["requestId"] == request_id]
    assert (logged["cost"], logged["costNanos"], logged["status"]) == (cost, cost_nanos, 200)
    page.get_by_test_id("refresh").click()
    row = page.locator(f'[data-testid="log-row"][data-request-id="{request_id}"]')
    expect(row.get_by_test_id("log-cost")).to_have_text(f"${cost}")
    expect(row.get_by_test_id("log-status-code")).to_have_text("200")
    expect(row.get_by_test_id("log-reason")).to_have_text("")


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
