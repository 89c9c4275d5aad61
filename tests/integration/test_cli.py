"""Every operator action as a CLI command, on the same database the running gateway uses."""

import json
import subprocess
import sys

import httpx

from tests.conftest import fake_config
from tests.support.processes import ROOT


def cli(gw, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "tollgate", *args, "--config", str(gw.config_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def as_json(gw, *args: str):
    return json.loads(cli(gw, *args, "--json").stdout)


def old_names(value):
    """An /admin answer without its camelCase names: the fields under their old names (a one-word name is both)."""
    if isinstance(value, dict):
        return {k: v if k == "metadata" else old_names(v) for k, v in value.items() if k.lower() == k}
    if isinstance(value, list):
        return [old_names(v) for v in value]
    return value


def test_cli_covers_every_operator_action_and_the_server_sees_it(gateway):
    account = as_json(gateway, "accounts", "create", "cli-co")
    assert account["management_key"].startswith("mk_")
    assert any(a["id"] == account["id"] for a in as_json(gateway, "accounts", "list"))
    sub = as_json(gateway, "subscriptions", "grant", account["id"], "tiny", "--period-days", "3")
    assert (sub["plan"], sub["status"]) == ("tiny", "active")
    granted = as_json(gateway, "credits", "grant", account["id"], "7.25")
    assert granted["credits_granted"] == "7.25"
    key = as_json(gateway, "keys", "create", account["id"], "--name", "ci", "--subscription", sub["id"])
    assert key["api_key"].startswith("sk_")
    mk = as_json(gateway, "management-keys", "create", account["id"])
    assert mk["management_key"].startswith("mk_")
    plan = as_json(gateway, "plans", "create", "hourly", "--budget", "0.02", "--window", "1h")
    assert plan["window"] == "1h"

    headers = {"Authorization": f"Bearer {key['api_key']}"}
    assert httpx.get(gateway.url + "/v1/usage", headers=headers).status_code == 200
    # The CLI writes to the database; the running gateway refuses the key on its next request.
    as_json(gateway, "keys", "revoke", account["id"], key["id"])
    r = httpx.get(gateway.url + "/v1/usage", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_revoked"

    key2 = as_json(gateway, "keys", "create", account["id"], "--name", "ci2", "--subscription", sub["id"])
    headers = {"Authorization": f"Bearer {key2['api_key']}"}
    assert httpx.get(gateway.url + "/v1/usage", headers=headers).status_code == 200
    assert as_json(gateway, "subscriptions", "cancel", sub["id"])["cancel_at_period_end"] is True
    assert httpx.get(gateway.url + "/v1/usage", headers=headers).status_code == 200  # runs to period end
    assert as_json(gateway, "subscriptions", "expire", sub["id"])["status"] == "expired"
    r = httpx.get(gateway.url + "/v1/usage", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "subscription_expired"

    shown = as_json(gateway, "accounts", "show", account["id"])
    assert {k["id"] for k in shown["keys"]} == {key["id"], key2["id"]}


def test_tables_for_people(gateway):
    account = as_json(gateway, "accounts", "create", "tables")
    out = cli(gateway, "plans", "list").stdout
    assert out.splitlines()[0].split()[:3] == ["SLUG", "NAME", "$/MONTH"]
    assert "standard" in out and "0.14" in out
    out = cli(gateway, "accounts", "list").stdout
    assert account["id"] in out and "tables" in out


def test_the_cli_shows_what_the_admin_api_shows(gateway):
    """One view per object for operators: the CLI's JSON is /admin's under its old (snake_case) names, which /admin
    still writes for one release beside the new ones, money as the same exact figures in strings."""
    account = as_json(gateway, "accounts", "create", "same-views")
    as_json(gateway, "subscriptions", "grant", account["id"], "tiny")
    as_json(gateway, "credits", "grant", account["id"], "3.10")
    as_json(gateway, "plans", "create", "views", "--budget", "0.05", "--window", "2h", "--models", "fake-chat")

    def admin(path: str):
        r = gateway.admin("GET", path)
        assert r.status_code == 200
        return old_names(json.loads(r.text, parse_float=str)["data"])  # 3.10 stays "3.10", as the CLI prints it

    assert as_json(gateway, "plans", "list") == admin("/admin/plans")
    assert as_json(gateway, "accounts", "list") == admin("/admin/accounts")
    subscriptions = admin(f"/admin/accounts/{account['id']}/subscriptions")
    assert as_json(gateway, "subscriptions", "list", account["id"]) == subscriptions
    shown, over_http = as_json(gateway, "accounts", "show", account["id"]), admin(f"/admin/accounts/{account['id']}")
    assert shown["subscriptions"] == over_http["subscriptions"]
    assert {k: shown[k] for k in ("id", "name", "created_at", "credits_granted")} == \
        {k: over_http[k] for k in ("id", "name", "created_at", "credits_granted")}


def test_cli_errors_are_clear_and_nonzero(gateway):
    proc = cli(gateway, "subscriptions", "grant", "acct_missing", "standard", check=False)
    assert proc.returncode != 0 and "no account" in proc.stderr
    account = as_json(gateway, "accounts", "create", "x")
    proc = cli(gateway, "subscriptions", "grant", account["id"], "platinum", check=False)
    assert proc.returncode != 0 and "no plan" in proc.stderr
    proc = cli(gateway, "credits", "grant", account["id"], "ten", check=False)
    assert proc.returncode != 0 and "ten" in proc.stderr


def test_quickstart_prints_a_working_key(gateway):
    data = as_json(gateway, "quickstart")
    assert data["plan"] == "standard"
    r = httpx.get(gateway.url + "/v1/usage", headers={"Authorization": f"Bearer {data['api_key']}"})
    assert r.status_code == 200 and r.json()["plan"]["slug"] == "standard"
    text = cli(gateway, "quickstart", "--name", "again").stdout
    assert "sk_" in text and "curl" in text


def test_every_command_has_help():
    top = subprocess.run([sys.executable, "-m", "tollgate", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert top.returncode == 0
    for command in ("serve", "accounts", "plans", "subscriptions", "credits", "keys", "quickstart",
                    "management-keys", "admin-token"):
        proc = subprocess.run([sys.executable, "-m", "tollgate", command, "--help"], capture_output=True, text=True,
                              cwd=ROOT)
        assert proc.returncode == 0 and "usage:" in proc.stdout, command
    version = subprocess.run([sys.executable, "-m", "tollgate", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert version.stdout.startswith("tollgate ")


def test_a_bad_config_stops_the_start_with_the_key_named(tmp_path, fake_upstream):
    config = fake_config(fake_upstream.url)
    config["plans"][0]["budget_per_window"] = "lots"
    from tests.support.toml import dumps

    path = tmp_path / "bad.toml"
    path.write_text(dumps(config))
    proc = subprocess.run([sys.executable, "-m", "tollgate", "serve", "--config", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "plans[0].budget_per_window" in proc.stderr
