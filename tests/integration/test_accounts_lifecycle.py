"""The account lifecycle over HTTP against the real gateway process, and the same actions from the CLI on
its database: key rotation with a grace period, management keys listed and revoked, plans created once,
changed field by field and retired, subscriptions renewed, extended and un-canceled, credit history."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.processes import ROOT, Gateway, start_upstream

DAY = 86400


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lifecycle")
    upstream = start_upstream(tmp)
    gateway = Gateway(tmp, fake_config(upstream.url))
    gateway.start("/health")
    yield gateway
    gateway.stop()
    upstream.stop()


def cli(gw: Gateway, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "tollgate", *args, "--config", str(gw.config_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert (done.returncode == 0) == ok, (args, done.stdout, done.stderr)
    return done


def cli_json(gw: Gateway, *args: str):
    return json.loads(cli(gw, *args, "--json").stdout)


def v1_usage(gw: Gateway, sk: str) -> httpx.Response:
    return httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {sk}"}, timeout=30)


def chat(gw: Gateway, sk: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})


def refused(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def error(r: httpx.Response) -> tuple[int, str | None]:
    """A management-envelope error: (status, the field it names)."""
    body = r.json()
    assert body["success"] is False, r.text
    return r.status_code, body["error"].get("param")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- key rotation --------------------------------------------------------------------------------

def test_a_rotated_key_keeps_its_id_and_usage_and_its_old_secret_only_for_the_grace(gw):
    key = gw.key(name="rotating")
    first = key["sk"]
    assert chat(gw, first).status_code == 200
    r = gw.manage("POST", f"/api/keys/{key['key_id']}/rotate", key["mk"], {"graceSeconds": 3600})
    assert r.status_code == 200, r.text
    rotated = r.json()["data"]
    second = rotated["apiKey"]
    assert second.startswith("sk_") and second != first and rotated["id"] == key["key_id"]
    assert rotated["prefix"] == second[:10] + "…" and rotated["isActive"] is True
    assert epoch(rotated["previousSecretValidUntil"]) - epoch(rotated["rotatedAt"]) == 3600
    # Both secrets work during the grace, as the same key; the new secret is never shown again.
    for secret in (first, second):
        assert v1_usage(gw, secret).json()["key"]["id"] == key["key_id"]
    assert chat(gw, second).status_code == 200
    listed = gw.manage("GET", "/api/keys", key["mk"]).text
    assert second not in listed and first not in listed
    report = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]
    assert report["total"]["requests"] == 2  # one request with each secret, one key's usage

    # A rotation during a grace ends that grace at once; a short grace runs out on its own.
    r = gw.manage("POST", f"/api/keys/{key['key_id']}/rotate", key["mk"], {"graceSeconds": 1})
    third = r.json()["data"]["apiKey"]
    assert refused(v1_usage(gw, first)) == (401, "invalid_api_key")
    assert v1_usage(gw, third).status_code == 200
    outcomes = []
    for _ in range(80):  # bounded: the 1-second grace ends well within 80 polls
        outcomes.append(v1_usage(gw, second).status_code)
        if outcomes[-1] == 401:
            break
        time.sleep(0.1)
    assert outcomes[-1] == 401 and set(outcomes) <= {200, 401}
    r = v1_usage(gw, second)
    assert refused(r) == (401, "invalid_api_key") and "rotated" in r.json()["error"]["message"]
    assert v1_usage(gw, third).status_code == 200

    # No grace: the old secret is refused on its very next request.
    fourth = gw.manage("POST", f"/api/keys/{key['key_id']}/rotate", key["mk"], {"graceSeconds": 0}).json()["data"]
    assert fourth["previousSecretValidUntil"] is None
    assert refused(v1_usage(gw, third)) == (401, "invalid_api_key")
    assert v1_usage(gw, fourth["apiKey"]).status_code == 200


def test_rotation_is_scoped_bounded_and_refused_for_revoked_keys(gw):
    key = gw.key(name="scoped")
    _, other_mk = gw.account("other")
    path = f"/api/keys/{key['key_id']}/rotate"
    assert error(gw.manage("POST", path, other_mk, {})) == (404, None)
    for body, param in (({"graceSeconds": -1}, "graceSeconds"), ({"graceSeconds": 604801}, "graceSeconds"),
                        ({"graceSeconds": "1h"}, "graceSeconds"), ({"graceSeconds": True}, "graceSeconds")):
        assert error(gw.manage("POST", path, key["mk"], body)) == (400, param), body
    r = httpx.post(gw.url + path, content=b"[1]", headers={"Authorization": f"Bearer {key['mk']}"})
    assert r.status_code == 400 and r.json()["success"] is False
    assert v1_usage(gw, key["sk"]).status_code == 200  # none of those rotated it
    # No body: the default grace of an hour.
    r = gw.manage("POST", path, key["mk"])
    assert r.status_code == 200
    assert epoch(r.json()["data"]["previousSecretValidUntil"]) - epoch(r.json()["data"]["rotatedAt"]) == 3600
    assert gw.manage("DELETE", f"/api/keys/{key['key_id']}", key["mk"]).status_code == 200
    assert error(gw.manage("POST", path, key["mk"], {})) == (409, None)


def test_the_operator_rotates_keys_over_http_and_from_the_cli(gw):
    key = gw.key(name="operator-rotated")
    r = gw.admin("POST", f"/admin/keys/{key['key_id']}/rotate", {"graceSeconds": 0})
    assert r.status_code == 200, r.text
    secret = r.json()["data"]["apiKey"]
    assert r.json()["data"]["id"] == key["key_id"] and r.json()["data"]["previousSecretValidUntil"] is None
    assert refused(v1_usage(gw, key["sk"])) == (401, "invalid_api_key")
    assert v1_usage(gw, secret).status_code == 200
    assert error(gw.admin("POST", "/admin/keys/key_nope/rotate", {})) == (404, None)
    assert error(gw.admin("POST", f"/admin/keys/{key['key_id']}/rotate", {"graceSeconds": 10**9})) == \
        (400, "graceSeconds")

    # The CLI writes the database; the running gateway takes the new secret and drops the old one.
    made = cli_json(gw, "keys", "rotate", key["account"], key["key_id"], "--grace", "0")
    assert made["id"] == key["key_id"] and made["api_key"].startswith("sk_")
    assert refused(v1_usage(gw, secret)) == (401, "invalid_api_key")
    assert v1_usage(gw, made["api_key"]).status_code == 200
    graced = cli_json(gw, "keys", "rotate", key["account"], key["key_id"], "--grace", "2h")
    assert epoch(graced["previous_secret_valid_until"]) - epoch(graced["rotated_at"]) == 7200
    assert v1_usage(gw, made["api_key"]).status_code == 200 and v1_usage(gw, graced["api_key"]).status_code == 200
    _, other_mk = gw.account("someone")
    other = gw.admin("GET", "/admin/accounts").json()["data"][-1]["id"]
    done = cli(gw, "keys", "rotate", other, key["key_id"], ok=False)
    assert "no key" in done.stderr
    done = cli(gw, "keys", "rotate", key["account"], key["key_id"], "--grace", "8d", ok=False)
    assert "--grace" in done.stderr and "7 days" in done.stderr


# -- management keys ------------------------------------------------------------------------------

def test_owners_list_add_and_revoke_management_keys_but_never_the_last(gw):
    account_id, first = gw.account("owner")
    listed = gw.manage("GET", "/api/management-keys", first).json()["data"]
    assert [(k["isActive"], k["current"]) for k in listed] == [(True, True)]
    assert error(gw.manage("DELETE", f"/api/management-keys/{listed[0]['id']}", first)) == (409, None)
    r = gw.manage("POST", "/api/management-keys", first, {"name": "ci"})
    assert r.status_code == 201, r.text
    second = r.json()["data"]["managementKey"]
    assert second.startswith("mk_") and r.json()["data"]["current"] is False
    keys = {k["name"]: k for k in gw.manage("GET", "/api/management-keys", second).json()["data"]}
    assert keys["ci"]["current"] is True and keys["default"]["current"] is False
    assert second not in gw.manage("GET", "/api/management-keys", second).text

    # An owner may revoke the very key it calls with, while another one stays active.
    r = gw.manage("DELETE", f"/api/management-keys/{keys['default']['id']}", first)
    assert r.status_code == 200 and r.json()["data"]["isActive"] is False
    assert gw.manage("GET", "/api/keys", first).status_code == 401
    assert gw.manage("GET", "/api/keys", second).status_code == 200
    assert error(gw.manage("DELETE", f"/api/management-keys/{keys['ci']['id']}", second)) == (409, None)
    assert gw.manage("DELETE", f"/api/management-keys/{keys['default']['id']}", second).status_code == 200

    _, stranger = gw.account("stranger")
    assert error(gw.manage("DELETE", f"/api/management-keys/{keys['ci']['id']}", stranger)) == (404, None)
    assert account_id not in gw.manage("GET", "/api/management-keys", stranger).text


def test_the_operator_lists_and_revokes_management_keys_and_may_force_the_last(gw):
    account_id, mk = gw.account("locked")
    path = f"/admin/accounts/{account_id}/management-keys"
    [key] = gw.admin("GET", path).json()["data"]
    assert (key["revoked"], key["revokedAt"]) == (False, None)
    assert error(gw.admin("DELETE", f"{path}/{key['id']}")) == (409, None)
    assert error(gw.admin("DELETE", f"{path}/{key['id']}?force=maybe")) == (400, "force")
    other_id, _ = gw.account("elsewhere")
    assert error(gw.admin("DELETE", f"/admin/accounts/{other_id}/management-keys/{key['id']}?force=true")) == \
        (404, None)
    assert error(gw.admin("GET", "/admin/accounts/acct_nope/management-keys")) == (404, None)
    r = gw.admin("DELETE", f"{path}/{key['id']}?force=true")
    assert r.status_code == 200 and r.json()["data"]["revoked"] is True
    assert gw.manage("GET", "/api/keys", mk).status_code == 401

    # The CLI: a new key, listed, then revoked (forced, being the only active one).
    made = cli_json(gw, "management-keys", "create", account_id, "--name", "fresh")
    assert gw.manage("GET", "/api/keys", made["management_key"]).status_code == 200
    listed = cli_json(gw, "management-keys", "list", account_id)
    assert {k["name"]: k["revoked"] for k in listed} == {"default": True, "fresh": False}
    # The CLI prints the operator views as they were built (snake_case): what /admin still writes under the
    # old names, for one release.
    served = gw.admin("GET", path).json()["data"]
    assert all(printed.items() <= view.items() for printed, view in zip(listed, served, strict=True))
    assert "last active" in cli(gw, "management-keys", "revoke", account_id, made["id"], ok=False).stderr
    assert cli_json(gw, "management-keys", "revoke", account_id, made["id"], "--force")["revoked"] is True
    assert gw.manage("GET", "/api/keys", made["management_key"]).status_code == 401


# -- plans ------------------------------------------------------------------------------------------

def test_a_plan_is_created_once_then_changed_field_by_field(gw):
    r = gw.admin("POST", "/admin/plans", {"slug": "patchy", "budgetPerWindow": "1", "window": "1h", "rpm": 500})
    assert r.status_code == 201, r.text
    before = r.json()["data"]
    r = gw.admin("POST", "/admin/plans", {"slug": "patchy", "budgetPerWindow": "9"})
    assert error(r) == (409, "slug") and "PATCH" in r.json()["error"]["message"]
    key = gw.key(plan="patchy", name="patchy")
    assert v1_usage(gw, key["sk"]).json()["rate_limits"]["rpm"] == 500

    r = gw.admin("PATCH", "/admin/plans/patchy", {"rpm": 7, "models": ["fake-chat"]})
    assert r.status_code == 200, r.text
    after = r.json()["data"]
    assert {k: v for k, v in after.items() if k not in ("rpm", "models")} == \
        {k: v for k, v in before.items() if k not in ("rpm", "models")}
    assert (after["rpm"], after["models"]) == (7, ["fake-chat"])
    assert v1_usage(gw, key["sk"]).json()["rate_limits"]["rpm"] == 7  # the running gateway's next request
    assert gw.admin("PATCH", "/admin/plans/patchy", {"models": None}).json()["data"]["models"] is None

    for body, status, param in (
        ({"window": "forever"}, 400, "window"), ({"rpm": None}, 400, "rpm"), ({"slug": "other"}, 400, "slug"),
        ({"budgetPerWindow": "1000000.01"}, 400, "budgetPerWindow"), ({"periodDays": 0}, 400, "periodDays"),
        ({"models": "fake-chat"}, 400, "models"), ({}, 400, None), ({"rpm": 2**63}, 400, "rpm"),
    ):
        assert error(gw.admin("PATCH", "/admin/plans/patchy", body)) == (status, param), body
    assert error(gw.admin("PATCH", "/admin/plans/standard", {"rpm": 1})) == (409, "slug")
    assert error(gw.admin("PATCH", "/admin/plans/nope", {"rpm": 1})) == (404, "plan")
    assert error(gw.admin("POST", "/admin/plans", {"slug": "a b", "budgetPerWindow": 1})) == (400, "slug")

    # The CLI: the same conflict and the same partial update.
    assert "exists already" in cli(gw, "plans", "create", "patchy", "--budget", "1", ok=False).stderr
    changed = cli_json(gw, "plans", "update", "patchy", "--tpm", "1234", "--window", "2h")
    assert (changed["tpm"], changed["window"], changed["rpm"]) == (1234, "2h", 7)
    assert v1_usage(gw, key["sk"]).json()["rate_limits"]["tpm"] == 1234
    assert "nothing to change" in cli(gw, "plans", "update", "patchy", ok=False).stderr


def test_a_retired_plan_takes_no_new_subscriptions_and_its_subscribers_run_on(gw):
    assert gw.admin("POST", "/admin/plans", {"slug": "sunset", "budgetPerWindow": "1"}).status_code == 201
    key = gw.key(plan="sunset", name="sunset")
    r = gw.admin("POST", "/admin/plans/sunset/retire")
    assert r.status_code == 200 and r.json()["data"]["retired"] is True and r.json()["data"]["retiredAt"]
    r = gw.admin("POST", f"/admin/accounts/{key['account']}/subscriptions", {"plan": "sunset"})
    assert error(r) == (409, "plan") and "retired" in r.json()["error"]["message"]
    assert chat(gw, key["sk"]).status_code == 200  # the existing subscription keeps running
    assert gw.admin("POST", f"/admin/subscriptions/{key['subscription']}/renew").status_code == 200
    flagged = {p["slug"]: p["retired"] for p in gw.admin("GET", "/admin/plans").json()["data"]}
    public = {p["slug"]: p["retired"] for p in httpx.get(gw.url + "/api/plans").json()["data"]}
    assert flagged["sunset"] is public["sunset"] is True and flagged["standard"] is public["standard"] is False
    assert error(gw.admin("POST", "/admin/plans/nope/retire")) == (404, "plan")

    assert cli_json(gw, "plans", "unretire", "sunset")["retired"] is False
    assert gw.admin("POST", f"/admin/accounts/{key['account']}/subscriptions", {"plan": "sunset"}).status_code == 201
    assert cli_json(gw, "plans", "retire", "sunset")["retired"] is True
    done = cli(gw, "subscriptions", "grant", key["account"], "sunset", ok=False)
    assert "retired" in done.stderr


# -- subscriptions ------------------------------------------------------------------------------------

def test_subscriptions_are_uncanceled_extended_and_renewed(gw):
    account_id, mk = gw.account("renewing")
    sub_id = gw.subscribe(account_id, "standard", periodDays=3)
    sk = gw.manage("POST", "/api/keys", mk, {"name": "k", "subscriptionId": sub_id}).json()["data"]["apiKey"]
    base = f"/admin/subscriptions/{sub_id}"
    granted = gw.admin("GET", f"/admin/accounts/{account_id}/subscriptions").json()["data"][0]
    start, end = epoch(granted["currentPeriodStart"]), epoch(granted["currentPeriodEnd"])

    assert gw.admin("POST", f"{base}/cancel").json()["data"]["status"] == "canceled"
    back = gw.admin("POST", f"{base}/uncancel").json()["data"]
    assert (back["status"], back["cancelAtPeriodEnd"]) == ("active", False)
    extended = gw.admin("POST", f"{base}/extend", {"days": 2}).json()["data"]
    assert epoch(extended["currentPeriodEnd"]) == end + 2 * DAY
    renewed = gw.admin("POST", f"{base}/renew").json()["data"]  # the plan's 30 days after the current end
    assert (epoch(renewed["currentPeriodStart"]), epoch(renewed["currentPeriodEnd"])) == (start, end + 32 * DAY)

    for path, body, param in ((f"{base}/extend", {}, "days"), (f"{base}/extend", {"days": 0}, "days"),
                              (f"{base}/extend", {"days": 3651}, "days"), (f"{base}/renew", {"periodDays": "x"},
                                                                           "periodDays")):
        assert error(gw.admin("POST", path, body)) == (400, param), (path, body)
    assert error(gw.admin("POST", "/admin/subscriptions/sub_nope/renew")) == (404, "subscriptionId")

    # Ended: no extension or un-cancel, but a renewal starts a new period now and the keys work again.
    assert gw.admin("POST", f"{base}/expire").status_code == 200
    assert refused(v1_usage(gw, sk)) == (403, "subscription_expired")
    assert error(gw.admin("POST", f"{base}/extend", {"days": 1})) == (409, None)
    assert error(gw.admin("POST", f"{base}/uncancel")) == (409, None)
    before = time.time()
    again = gw.admin("POST", f"{base}/renew", {"periodDays": 7}).json()["data"]
    assert again["status"] == "active" and epoch(again["currentPeriodStart"]) >= int(before)
    assert epoch(again["currentPeriodEnd"]) - epoch(again["currentPeriodStart"]) == 7 * DAY
    assert v1_usage(gw, sk).status_code == 200

    # The CLI, on the same database.
    assert epoch(cli_json(gw, "subscriptions", "extend", sub_id, "1")["current_period_end"]) == \
        epoch(again["currentPeriodEnd"]) + DAY
    cli_json(gw, "subscriptions", "cancel", sub_id)
    assert cli_json(gw, "subscriptions", "uncancel", sub_id)["cancel_at_period_end"] is False
    renewed = cli_json(gw, "subscriptions", "renew", sub_id, "--period-days", "2")
    assert epoch(renewed["current_period_end"]) == epoch(again["currentPeriodEnd"]) + 3 * DAY
    assert v1_usage(gw, sk).json()["plan"]["expires_at"] == renewed["current_period_end"]


# -- credit history ---------------------------------------------------------------------------------------

def test_every_credit_grant_is_listed_with_its_amount_note_and_time(gw):
    account_id, mk = gw.account("credited")
    before = time.time()
    assert gw.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": "12.50", "note": "welcome"}).status_code == 200
    assert gw.admin("POST", f"/admin/accounts/{account_id}/credits", {"amount": 0.25}).status_code == 200
    cli(gw, "credits", "grant", account_id, "3", "--note", "from the cli")
    data = gw.admin("GET", f"/admin/accounts/{account_id}/credits").json()["data"]
    assert [(g["amount"], g["amountNanos"], g["note"]) for g in data["grants"]] == \
        [("12.50", 12_500_000_000, "welcome"), ("0.25", 250_000_000, None), ("3.00", 3_000_000_000, "from the cli")]
    assert all(epoch(g["createdAt"]) >= int(before) for g in data["grants"])
    assert (data["creditsGranted"], data["creditsGrantedNanos"], data["creditBalanceNanos"]) == \
        ("15.75", 15_750_000_000, 15_750_000_000)

    owner = gw.manage("GET", "/api/billing/credits/history?limit=2", mk).json()
    assert [g["amountNanos"] for g in owner["data"]["grants"]] == [12_500_000_000, 250_000_000]
    assert owner["hasMore"] is True and owner["data"]["grantedNanos"] == 15_750_000_000
    rest = gw.manage("GET", f"/api/billing/credits/history?limit=2&after={owner['nextCursor']}", mk).json()
    assert [g["note"] for g in rest["data"]["grants"]] == ["from the cli"] and rest["hasMore"] is False
    assert [g["id"] for g in cli_json(gw, "credits", "list", account_id)] == [g["id"] for g in data["grants"]]

    _, stranger = gw.account("no-credits")
    assert gw.manage("GET", "/api/billing/credits/history", stranger).json()["data"]["grants"] == []
    for query, param in (("limit=0", "limit"), ("after=x", "after"), ("limit=1001", "limit")):
        assert error(gw.manage("GET", f"/api/billing/credits/history?{query}", mk)) == (400, param)
    assert error(gw.admin("GET", "/admin/accounts/acct_nope/credits")) == (404, None)


# -- malformed requests: a 4xx in the management envelope, never a 500 -----------------------------------

def test_malformed_lifecycle_requests_get_a_4xx_envelope(gw):
    key = gw.key(name="fuzzed")
    assert gw.admin("POST", "/admin/plans", {"slug": "fuzzed", "budgetPerWindow": "1"}).status_code == 201
    owner = [("POST", f"/api/keys/{key['key_id']}/rotate"), ("PATCH", f"/api/keys/{key['key_id']}"),
             ("POST", "/api/management-keys")]
    operator = [("POST", f"/admin/keys/{key['key_id']}/rotate"), ("PATCH", "/admin/plans/fuzzed"),
                ("POST", f"/admin/subscriptions/{key['subscription']}/renew"),
                ("POST", f"/admin/subscriptions/{key['subscription']}/extend")]
    bodies = [b"null", b"[]", b'"text"', b"{", b'{"graceSeconds": 1e400, "days": 1e400}',
              b'{"graceSeconds": 99999999999999999999999}', b'{"days": -1, "period_days": [1]}',
              b'{"name": 5, "endUser": {"a": 1}, "metadata": 3}', b'{"rpm": "many", "window": 5, "models": [1]}',
              "{\"name\": \"\u0000\", \"period_days\": 1.5}".encode()]
    for calls, token in ((owner, key["mk"]), (operator, gw.admin_token)):
        for method, path in calls:
            for body in bodies:
                r = httpx.request(method, gw.url + path, content=body, timeout=30,
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                assert 400 <= r.status_code < 500, (method, path, body, r.text)
                assert r.json()["success"] is False, (method, path, body)
    assert v1_usage(gw, key["sk"]).status_code == 200  # nothing above rotated or broke the key


@pytest.mark.parametrize("command, words", [
    (("keys", "rotate"), ("--grace", "shown once")), (("keys", "update"), ("--end-user", "--clear-metadata")),
    (("keys", "create"), ("--end-user", "--metadata")), (("keys", "list"), ("--end-user",)),
    (("management-keys", "list"), ("account",)), (("management-keys", "revoke"), ("--force",)),
    (("plans", "update"), ("--budget", "--all-models")), (("plans", "retire"), ("slug",)),
    (("plans", "unretire"), ("slug",)), (("subscriptions", "renew"), ("--period-days",)),
    (("subscriptions", "extend"), ("days",)), (("subscriptions", "uncancel"), ("subscription",)),
    (("credits", "list"), ("account",)),
])
def test_every_lifecycle_command_has_help(command, words):
    done = subprocess.run([sys.executable, "-m", "tollgate", *command, "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage:"), command
    assert all(word in done.stdout for word in words), (command, done.stdout)
