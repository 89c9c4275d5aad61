"""The operator token and the gateway's files, against the real `tollgate serve` process.

Weak tokens stop the start; the token is stored as salted scrypt (and an older SHA-256 is
upgraded by its first use); wrong tokens from one address back off with 429 and Retry-After;
the database, its side files and the journal are the owner's only.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import fake_config
from tests.support.processes import ADMIN_TOKEN, ROOT, Gateway
from tests.support.toml import dumps
from tollgate.domain.secrets import operator_token_problem

MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def meta(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'admin_token%'").fetchall())
    finally:
        conn.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("token", ["a", "a" * 40, "bench-operator-token", "tga_" + "0123456789abcdef" * 2])
def test_a_weak_operator_token_stops_the_start_with_one_line_saying_how_to_make_one(tmp_path, token):
    path = tmp_path / "gw.toml"
    path.write_text(dumps({"server": {"database": f"sqlite:///{tmp_path / 'gw.db'}", "port": 0}}))
    env = {**os.environ, "TOLLGATE_ADMIN_TOKEN": token}
    proc = subprocess.run([sys.executable, "-m", "tollgate", "serve", "--config", str(path)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "TOLLGATE_ADMIN_TOKEN" in lines[0] and MAKE_TOKEN in lines[0], proc.stderr
    assert not (tmp_path / "gw.db").exists()  # refused before anything was opened


def test_the_token_is_stored_salted_and_an_older_sha256_is_upgraded_by_its_first_use(tmp_path, gateway_factory,
                                                                                    fake_upstream):
    dbs = [tmp_path / "one.db", tmp_path / "two.db"]
    gateways = [gateway_factory({**fake_config(fake_upstream.url), "server": {"database": f"sqlite:///{db}"}})
                for db in dbs]
    for gw in gateways:
        assert gw.admin("GET", "/admin/accounts").status_code == 200
    stored = [meta(db) for db in dbs]
    hashes = [s["admin_token_scrypt"] for s in stored]
    assert all(h.startswith("scrypt$") for h in hashes) and hashes[0] != hashes[1]  # salted: two hashes
    sha256 = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    for s in stored:
        assert ADMIN_TOKEN not in str(s) and sha256 not in str(s)
    for gw in gateways:
        gw.stop()

    # An older tollgate stored the token's unsalted SHA-256: it works once more, and that use replaces it.
    conn = sqlite3.connect(dbs[0])
    conn.execute("DELETE FROM meta WHERE key = 'admin_token_scrypt'")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('admin_token_sha256', ?)", (sha256,))
    conn.commit()
    conn.close()
    unconfigured = {"TOLLGATE_ADMIN_TOKEN": ""}
    config = {**fake_config(fake_upstream.url), "server": {"database": f"sqlite:///{dbs[0]}"}}
    old = gateway_factory(config, env=unconfigured)
    assert meta(dbs[0]) == {"admin_token_sha256": sha256}
    assert old.admin("GET", "/admin/accounts", token=ADMIN_TOKEN + "x").status_code == 401
    assert old.admin("GET", "/admin/accounts").status_code == 200
    upgraded = meta(dbs[0])
    assert upgraded["admin_token_scrypt"].startswith("scrypt$") and not upgraded["admin_token_sha256"]
    old.stop()
    again = gateway_factory(config, env=unconfigured)
    assert again.admin("GET", "/admin/accounts").status_code == 200
    assert again.admin("GET", "/admin/accounts", token="tga_" + ADMIN_TOKEN[::-1]).status_code == 401
    assert "Operator token (shown once" not in again.log.read_text()  # the stored token, not a new one


def test_wrong_tokens_from_one_address_back_off_with_429_and_retry_after(gateway):
    sk = gateway.key()["sk"]
    wrong = "tga_" + ADMIN_TOKEN[::-1]
    for _ in range(5):  # the free mistakes
        r = gateway.admin("GET", "/admin/accounts", token=wrong)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_admin_token"
    waits = []
    for token in (wrong, ADMIN_TOKEN):  # held back, the right token too
        r = gateway.admin("GET", "/admin/accounts", token=token)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "too_many_failed_attempts"
        waits.append(int(r.headers["retry-after"]))
    assert waits[0] >= 1 and waits[1] <= waits[0]
    # Only the operator plane is held back: the same address still uses the data plane.
    assert httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {sk}"}).status_code == 200

    time.sleep(waits[1])
    r = gateway.admin("GET", "/admin/accounts", token=wrong)  # one more mistake: a longer wait
    assert r.status_code == 401
    r = gateway.admin("GET", "/admin/accounts")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > waits[0]
    for _ in range(10):  # wait out what it says; the right token then works and clears the record
        time.sleep(int(r.headers["retry-after"]))
        r = gateway.admin("GET", "/admin/accounts")
        if r.status_code != 429:
            break
    assert r.status_code == 200, r.text
    for _ in range(4):
        assert gateway.admin("GET", "/admin/accounts", token=wrong).status_code == 401
    assert gateway.admin("GET", "/admin/accounts").status_code == 200  # the success cleared the record


def test_the_database_its_side_files_and_the_journal_are_the_owners_only(tmp_path, gateway_factory, fake_upstream):
    own = tmp_path / "state" / ".tollgate"
    own.mkdir(parents=True)
    os.chmod(own, 0o755)
    db = own / "tollgate.db"
    seq = own / "tollgate.db-seq"
    seq.write_bytes(b"\0" * 8)  # left readable by everyone by an older version
    os.chmod(seq, 0o644)
    gw = gateway_factory({**fake_config(fake_upstream.url), "server": {"database": f"sqlite:///{db}"}})
    key = gw.key()
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key['sk']}"}, timeout=30,
                   json={"model": "fake-chat", "messages": [{"role": "user", "content": "hi [[reply:3]]"}]})
    assert r.status_code == 200, r.text
    names = {p.name: mode(p) for p in own.iterdir()}
    expected = {"tollgate.db" + side for side in ("", "-wal", "-shm", "-seq", "-ledger.log", "-ledger.lock")}
    assert expected <= set(names), names
    assert {name: m for name, m in names.items() if m != 0o600} == {}
    assert mode(own) == 0o700


def test_a_generated_token_is_strong_and_admin_token_rotate_replaces_it(tmp_path, gateway_factory, fake_upstream):
    config = {**fake_config(fake_upstream.url), "server": {"database": f"sqlite:///{tmp_path / 'rot.db'}"}}
    unconfigured = {"TOLLGATE_ADMIN_TOKEN": ""}
    gw = gateway_factory(config, env=unconfigured)
    shown = re.search(r"Operator token \(shown once, store it\): (\S+)", gw.log.read_text())
    assert shown, gw.log.read_text()
    first = shown.group(1)
    assert first != ADMIN_TOKEN and operator_token_problem(first) is None
    assert gw.admin("GET", "/admin/accounts", token=first).status_code == 200
    assert gw.admin("GET", "/admin/accounts", token=ADMIN_TOKEN).status_code == 401
    gw.stop()
    proc = subprocess.run([sys.executable, "-m", "tollgate", "admin-token", "--rotate", "--config", str(gw.config_path)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, **unconfigured}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    second = re.search(r"Operator token \(shown once\): (\S+)", proc.stdout).group(1)
    assert second != first and operator_token_problem(second) is None
    assert meta(tmp_path / "rot.db")["admin_token_scrypt"].startswith("scrypt$")
    again = gateway_factory(config, env=unconfigured)
    assert again.admin("GET", "/admin/accounts", token=second).status_code == 200
    assert again.admin("GET", "/admin/accounts", token=first).status_code == 401
