"""A database that falls behind: admissions wait, then 503 with Retry-After; the backlog stops growing,
and everything comes back once the database does (issue 20).

The gateway is the real one over HTTP. The database is slowed for real: this test holds SQLite's
write lock from a second connection, so the gateway's database thread cannot write the journaled
ledger into it. Settlements stay durable in the journal meanwhile; the backlog's bound is set
small (`[ledger] backlog_seconds`) so that it is reached within a few requests.
"""

from __future__ import annotations

import sqlite3
import time

import httpx

from tests.conftest import fake_config
from tests.support.processes import Gateway

MAX_REQUESTS = 200  # every loop here is bounded by a count; a hang becomes a failure


def chat(gw: Gateway, sk: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})


def ledger(gw: Gateway) -> dict:
    r = gw.admin("GET", "/admin/metrics/ledger")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_a_slow_database_turns_into_waits_and_503s_not_memory(gateway_factory, fake_upstream, tmp_path):
    config = fake_config(fake_upstream.url)
    config["ledger"] = {"backlog_seconds": 0.3, "backlog_wait": 0.2, "usage_retention_days": 0}
    config["plans"] = [{"slug": "roomy", "window": "1d", "budget_per_window": "10", "rpm": 100000, "tpm": 10**9}]
    gw = gateway_factory(config)
    key = gw.key(plan="roomy")
    assert chat(gw, key["sk"]).status_code == 200  # the key's context is cached: no database read per request
    assert ledger(gw)["backlogRefusals"] == 0

    lock = sqlite3.connect(tmp_path / "tollgate.db", isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")  # the gateway's writes of the ledger now wait for this lock
    answered, refused = 0, None
    try:
        for _ in range(MAX_REQUESTS):
            r = chat(gw, key["sk"])
            if r.status_code == 503:
                refused = r
                break
            assert r.status_code == 200, r.text
            answered += 1
        assert refused is not None, f"{MAX_REQUESTS} requests and no refusal while the database was locked"
        body = refused.json()["error"]
        assert body["code"] == "ledger_busy" and "retry" in body["message"]
        assert int(refused.headers["retry-after"]) >= 1
        held = ledger(gw)
        assert held["backlogRefusals"] >= 1 and held["backlogWaits"] >= held["backlogRefusals"]
        assert held["backlogEntries"] >= 1
        # Past the bound, every further request is refused before it settles anything: the backlog holds still.
        for _ in range(10):
            assert chat(gw, key["sk"]).status_code == 503
        still = ledger(gw)
        assert (still["backlogEntries"], still["backlogBytes"]) == (held["backlogEntries"], held["backlogBytes"])
        assert still["backlogRefusals"] >= held["backlogRefusals"] + 10
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    # The database is back: the backlog drains and requests are answered again.
    for _ in range(MAX_REQUESTS):
        r = chat(gw, key["sk"])
        if r.status_code == 200:
            break
        assert r.status_code == 503, r.text
        time.sleep(0.05)
    else:
        raise AssertionError("requests were still refused after the database was released")
    answered += 1
    usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}, timeout=30)
    assert usage.status_code == 200  # a read of the ledger: every journaled batch is in the database first
    assert ledger(gw)["backlogEntries"] == 0
    gw.stop()

    # Every answered request is in the database, charged; the refused ones left no record and no charge.
    db = sqlite3.connect(tmp_path / "tollgate.db")
    records, cost = db.execute("SELECT COUNT(*), SUM(cost) FROM usage_records WHERE key_id = ?",
                               (key["key_id"],)).fetchone()
    statuses = {s for (s,) in db.execute("SELECT DISTINCT status FROM usage_records WHERE key_id = ?",
                                          (key["key_id"],))}
    spent = db.execute("SELECT SUM(spent) FROM spend_totals WHERE pool = ?", (f"sub:{key['subscription']}",)).fetchone()[0]
    db.close()
    assert records == answered + 1 and statuses == {200}  # (+1: the request that cached the key)
    assert spent == cost > 0
