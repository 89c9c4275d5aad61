"""One style for the management (`/api`) and operator (`/admin`) planes, over HTTP against the real gateway:
camelCase names, money as a decimal string beside integer nano-dollars, and for one release the old
snake_case names too (in answers, with their old values, and in request bodies), marked with the
Deprecation, Sunset and Link headers (docs/api.md#deprecations)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.processes import Gateway

DEPRECATION = "@1796515200"  # 2026-12-06T00:00:00Z
SUNSET = "Sun, 06 Jun 2027 00:00:00 GMT"
LINK = '</docs/api.md#deprecations>; rel="deprecation"'

# Every field of dollars the planes write under a name of its own (beside `<name>Nanos`).
MONEY = {"amount", "balance", "granted", "spent", "limit", "remaining", "reserved", "priceMonthly", "budgetPerWindow",
         "creditBalance", "creditsGranted", "creditsLow", "cost", "cacheSaved"}
# Numbers that are not money and not whole: ratios of the overhead report, averages, ages.
FRACTIONS = {"resentShare", "resentCostShare", "vsActual", "windowsPerDay", "daysOfWindows", "latencyMsAvg",
             "backlogAgeSeconds", "backlogLimitSeconds"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def styled(gateway_factory, fake_upstream, **server) -> Gateway:
    config = fake_config(fake_upstream.url, **server)
    config["alerts"] = {"allow_private": True}
    return gateway_factory(config)


def deprecated(r: httpx.Response) -> bool:
    """Whether the answer carries the deprecation headers (all three, in their exact form)."""
    if "deprecation" not in r.headers:
        assert "sunset" not in r.headers and "link" not in r.headers, r.headers
        return False
    assert (r.headers["deprecation"], r.headers["sunset"], r.headers["link"]) == (DEPRECATION, SUNSET, LINK)
    return True


def check_style(value, where: str, old_names: bool) -> None:
    """No snake_case name but an old one beside its new one (and only when the old names are on); money under
    a new name a decimal string, equal to its `…Nanos` integer; no fraction but the known non-money ones."""
    if isinstance(value, list):
        for n, item in enumerate(value):
            check_style(item, f"{where}[{n}]", old_names)
        return
    if not isinstance(value, dict):
        return
    for name, v in value.items():
        at = f"{where}.{name}"
        if name == "metadata":
            continue  # a client's own names, as given
        if "_" in name:
            assert old_names, f"{at}: a snake_case name with the old names off"
            assert camel(name) in value, f"{at}: an old name without its new one"
            continue  # the old form, as it was
        assert not isinstance(v, float) or name in FRACTIONS, f"{at}: a fraction {v!r}"
        if name.endswith("Nanos"):
            assert v is None or (isinstance(v, int) and not isinstance(v, bool)), f"{at}: {v!r}"
            assert name[:-5] in value, f"{at}: nano-dollars without their decimal string"
        if name in MONEY and not isinstance(v, (dict, list)):
            assert v is None or isinstance(v, str), f"{at}: money as {v!r}"
        if f"{name}Nanos" in value:
            assert (v is None) == (value[f"{name}Nanos"] is None), at
            assert v is None or (isinstance(v, str) and Decimal(v) * 10**9 == value[f"{name}Nanos"]), f"{at}: {v!r}"
        check_style(v, at, old_names)


def scripted_session(gw: Gateway) -> list[tuple[str, httpx.Response]]:
    """Every /api and /admin endpoint that answers JSON, once or more, on objects made along the way."""
    seen: list[tuple[str, httpx.Response]] = []

    def admin(method: str, path: str, body: dict | None = None) -> dict:
        r = gw.admin(method, path, body)
        assert r.status_code < 300, (method, path, r.text)
        seen.append((f"{method} {path}", r))
        return r.json()

    def manage(method: str, path: str, mk: str, body: dict | None = None) -> dict:
        r = gw.manage(method, path, mk, body)
        assert r.status_code < 300, (method, path, r.text)
        seen.append((f"{method} {path}", r))
        return r.json()

    account = admin("POST", "/admin/accounts", {"name": "styled"})["data"]
    account_id, mk = account["id"], account["managementKey"]
    admin("GET", "/admin/accounts")
    admin("POST", f"/admin/accounts/{account_id}/management-keys", {"name": "ci"})
    admin("GET", f"/admin/accounts/{account_id}/management-keys")
    admin("POST", "/admin/plans", {"slug": "styled", "budgetPerWindow": "1.50", "priceMonthly": "9.99",
                                   "window": "1h", "periodDays": 30, "rpm": 1000, "tpm": 10**6})
    admin("PATCH", "/admin/plans/styled", {"priceMonthly": "10", "rpm": 500})
    admin("GET", "/admin/plans")
    sub = admin("POST", f"/admin/accounts/{account_id}/subscriptions", {"plan": "styled", "periodDays": 3})["data"]
    admin("GET", f"/admin/accounts/{account_id}/subscriptions")
    admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": "12.50", "note": "welcome"})
    admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": 0.25})
    admin("GET", f"/admin/accounts/{account_id}/credits")
    for action, body in (("extend", {"days": 1}), ("renew", {"periodDays": 2}), ("cancel", None), ("uncancel", None)):
        admin("POST", f"/admin/subscriptions/{sub['id']}/{action}", body)
    admin("GET", f"/admin/accounts/{account_id}")

    manage("GET", "/api/plans", mk)
    key = manage("POST", "/api/keys/subscription", mk, {
        "name": "cust-1", "subscriptionId": sub["id"], "budget": {"limit": "0.50", "window": "1h"},
        "endUser": "alice", "metadata": {"snake_name": 1, "tier": "gold"}})["data"]
    credit = manage("POST", "/api/keys/credit", mk, {"name": "credit"})["data"]
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key['apiKey']}"}, timeout=30,
                   json={"model": "fake-chat", "messages": [{"role": "user", "content": "hi [[reply:3]]"}]})
    assert r.status_code == 200, r.text
    manage("GET", "/api/keys", mk)
    manage("PATCH", f"/api/keys/{key['id']}", mk, {"name": "cust-one"})
    manage("POST", f"/api/keys/{key['id']}/rotate", mk, {"graceSeconds": 60})
    admin("POST", f"/admin/keys/{key['id']}/rotate", {"graceSeconds": 60})
    manage("GET", "/api/billing/status", mk)
    manage("GET", "/api/billing/credits", mk)
    manage("GET", "/api/billing/credits/history?limit=1", mk)
    manage("GET", "/api/usage?groupBy=endUser", mk)
    manage("GET", f"/api/usage/{key['id']}", mk)
    manage("GET", "/api/analytics/overhead?steps=1", mk)
    manage("GET", "/api/management-keys", mk)
    manage("POST", "/api/management-keys", mk, {"name": "spare"})
    manage("PUT", "/api/webhook", mk, {"url": "http://127.0.0.1:9/hook", "creditsLow": "1"})
    manage("GET", "/api/webhook", mk)
    manage("POST", "/api/webhook/test", mk)
    manage("GET", "/api/webhook/deliveries", mk)
    manage("DELETE", f"/api/keys/{credit['id']}", mk)
    manage("POST", "/api/billing/cancel", mk, {"subscriptionId": sub["id"]})
    admin("GET", "/admin/metrics/routes")
    admin("GET", "/admin/metrics/caches")
    admin("GET", "/admin/metrics/ledger")
    admin("POST", f"/admin/subscriptions/{sub['id']}/expire")
    manage("DELETE", "/api/webhook", mk)
    return seen


@pytest.mark.parametrize("old_names", [True, False], ids=["old-names-on", "old-names-off"])
def test_every_management_and_operator_answer_is_in_the_one_style(gateway_factory, fake_upstream, old_names):
    gw = styled(gateway_factory, fake_upstream, legacy_field_names=old_names)
    seen = scripted_session(gw)
    assert len(seen) > 40
    for call, r in seen:
        body = r.json()
        assert body["success"] is True, call
        check_style(body, call, old_names)
        wrote_old = any("_" in name for name in _names(body))
        assert deprecated(r) == wrote_old, (call, dict(r.headers))
    # The old names, where on, are on both planes: the operator's objects and the owner's usage reports.
    calls = {call.split("?")[0]: r for call, r in seen}
    assert deprecated(calls["POST /admin/accounts"]) is old_names
    assert deprecated(calls["GET /api/billing/status"]) is old_names
    assert not deprecated(calls["GET /api/keys"])  # always camelCase: nothing of the old style in it


def _names(value) -> list[str]:
    """Every name in a JSON tree but those inside `metadata` (a client's own)."""
    if isinstance(value, list):
        return [n for v in value for n in _names(v)]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in (k, *([] if k == "metadata" else _names(v)))]
    return []


def test_new_names_and_money_as_strings_on_both_planes(gateway_factory, fake_upstream):
    gw = styled(gateway_factory, fake_upstream)
    r = gw.admin("POST", "/admin/accounts", {"name": "new-style"})
    assert r.status_code == 201, r.text
    account = r.json()["data"]
    assert account["managementKey"].startswith("mk_") and account["managementKeyId"].startswith("mkey_")
    assert (account["creditsGranted"], account["creditsGrantedNanos"], account["creditBalance"],
            account["creditBalanceNanos"]) == ("0.00", 0, "0.00", 0)
    assert account["createdAt"].endswith("Z")

    r = gw.admin("POST", "/admin/plans", {"slug": "gold", "budgetPerWindow": "2.5", "priceMonthly": 19.99,
                                          "window": "2h", "periodDays": 7})
    assert r.status_code == 201, r.text
    plan = r.json()["data"]
    assert (plan["budgetPerWindow"], plan["budgetPerWindowNanos"], plan["priceMonthly"], plan["priceMonthlyNanos"],
            plan["periodDays"], plan["retiredAt"]) == ("2.50", 2_500_000_000, "19.99", 19_990_000_000, 7, None)
    public = {p["slug"]: p for p in httpx.get(gw.url + "/api/plans").json()["data"]}
    assert (public["gold"]["budgetPerWindow"], public["gold"]["priceMonthlyNanos"]) == ("2.50", 19_990_000_000)

    r = gw.admin("POST", f"/admin/accounts/{account['id']}/credits", {"amount": "12.50"})
    assert (r.json()["data"]["creditBalance"], r.json()["data"]["creditBalanceNanos"]) == ("12.50", 12_500_000_000)
    credits = gw.manage("GET", "/api/billing/credits", account["managementKey"]).json()["data"]
    assert credits == {"balance": "12.50", "balanceNanos": 12_500_000_000, "granted": "12.50",
                       "grantedNanos": 12_500_000_000, "spent": "0.00", "spentNanos": 0}

    sub = gw.subscribe(account["id"], "gold")
    status = gw.manage("GET", "/api/billing/status", account["managementKey"]).json()["data"]
    budget = status["subscriptions"][0]["budget"]
    assert (budget["limit"], budget["limitNanos"], budget["spent"], budget["reservedNanos"]) == \
        ("2.50", 2_500_000_000, "0.00", 0)
    assert budget["windowStart"].endswith("Z") and budget["resetsAt"].endswith("Z")

    # The data plane keeps its own shape (snake_case, money as JSON numbers): /v1/usage is not this API's.
    key = gw.manage("POST", "/api/keys/subscription", account["managementKey"], {"name": "k", "subscriptionId": sub})
    usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key.json()['data']['apiKey']}"})
    assert usage.status_code == 200, usage.text
    assert not deprecated(usage)
    assert (usage.json()["budget"]["limit"], usage.json()["budget"]["limit_nanos"]) == (2.5, 2_500_000_000)


def test_old_names_keep_working_for_one_release_with_the_deprecation_headers(gateway_factory, fake_upstream):
    gw = styled(gateway_factory, fake_upstream)
    # An answer carries each renamed field under its old name too, with its old value (money as a number).
    r = gw.admin("POST", "/admin/accounts", {"name": "old-style"})
    assert deprecated(r)
    account = r.json()["data"]
    assert account["management_key"] == account["managementKey"]
    assert (account["created_at"], account["credits_granted"]) == (account["createdAt"], 0)
    listed = gw.admin("GET", "/admin/accounts").json()
    assert (listed["has_more"], listed["next_cursor"]) == (listed["hasMore"], listed["nextCursor"]) == (False, None)

    # A request may use the old names: read as the new ones, and answered with the headers.
    r = gw.admin("POST", "/admin/plans", {"slug": "legacy", "budget_per_window": "0.05", "price_monthly": 3,
                                          "period_days": 10})
    assert r.status_code == 201, r.text
    assert deprecated(r)
    plan = r.json()["data"]
    assert (plan["budgetPerWindow"], plan["priceMonthly"], plan["periodDays"]) == ("0.05", "3.00", 10)
    assert (plan["budget_per_window"], plan["price_monthly"], plan["period_days"]) == (0.05, 3, 10)
    r = gw.admin("PATCH", "/admin/plans/legacy", {"budget_per_window": "0.10"})
    assert r.status_code == 200 and r.json()["data"]["budgetPerWindowNanos"] == 100_000_000 and deprecated(r)
    sub = gw.subscribe(account["id"], "legacy", period_days=4)
    key = gw.manage("POST", "/api/keys/subscription", account["managementKey"],
                    {"name": "k", "subscriptionId": sub}).json()["data"]
    r = gw.admin("POST", f"/admin/keys/{key['id']}/rotate", {"grace_seconds": 0})
    assert r.status_code == 200, r.text
    assert deprecated(r) and r.json()["data"]["previousSecretValidUntil"] is None
    r = gw.admin("POST", f"/admin/subscriptions/{sub}/renew", {"period_days": 1})
    assert r.status_code == 200 and deprecated(r)
    # Both names with one value are that value; with two values, a 400 in the envelope naming the new name.
    r = gw.admin("POST", "/admin/plans", {"slug": "twice", "budgetPerWindow": "1", "budget_per_window": "1"})
    assert r.status_code == 201 and r.json()["data"]["budgetPerWindow"] == "1.00"
    r = gw.admin("POST", "/admin/plans", {"slug": "clash", "budgetPerWindow": "1", "budget_per_window": "2"})
    assert r.status_code == 400 and deprecated(r)
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == "invalid_request"
    assert body["error"]["param"] == "budgetPerWindow" and "budget_per_window" in body["error"]["message"]
    r = gw.admin("POST", f"/admin/keys/{key['id']}/rotate", {"graceSeconds": 5, "grace_seconds": 6})
    assert r.status_code == 400 and r.json()["error"]["param"] == "graceSeconds"
    assert "clash" not in {p["slug"] for p in gw.admin("GET", "/admin/plans").json()["data"]}  # nothing was made
    # An error of a field the service checks names the new name too.
    r = gw.admin("POST", f"/admin/accounts/{account['id']}/subscriptions", {"plan": "legacy", "period_days": 100_000})
    assert r.status_code == 400 and r.json()["error"]["param"] == "periodDays"
    assert r.json()["error"]["message"].startswith("periodDays ")


def test_with_the_old_names_off_an_old_request_name_is_a_400_naming_the_new(gateway_factory, fake_upstream):
    gw = styled(gateway_factory, fake_upstream, legacy_field_names=False)
    r = gw.admin("POST", "/admin/plans", {"slug": "legacy", "budget_per_window": "0.05"})
    assert r.status_code == 400 and not deprecated(r)
    assert r.json()["error"]["param"] == "budgetPerWindow" and "budget_per_window" in r.json()["error"]["message"]
    r = gw.admin("POST", "/admin/accounts", {"name": "new-only"})
    assert r.status_code == 201 and not deprecated(r)
    assert "management_key" not in r.json()["data"] and r.json()["data"]["managementKey"].startswith("mk_")
