"""A gateway serving from PostgreSQL (one process, its embedded ledger): killed with SIGKILL right after answering,
restarted, it has every settled request in the database exactly once (replayed from its local journal slot)."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from tests.conftest import fake_config
from tests.support.processes import Gateway

REQUESTS = 10


def chat(gw: Gateway, sk: str) -> int:
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                   json={"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    return int(r.headers["x-request-cost-nanos"])


async def count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM usage_records WHERE status = 200")
    finally:
        await conn.close()


def test_a_gateway_on_postgresql_killed_after_answering_loses_no_settled_spend(pg_url, tmp_path, fake_upstream):
    config = fake_config(fake_upstream.url, database=pg_url)
    config["ledger"] = {"journal_dir": str(tmp_path / "journal")}
    gw = Gateway(tmp_path, config)
    gw.start("/health")
    try:
        key = gw.key(plan="tiny")
        costs = [chat(gw, key["sk"]) for _ in range(REQUESTS)]
        assert sum(costs) > 0
        gw.kill()  # SIGKILL: the last settlements may be in the local journal only
        gw.start("/health")
        usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}, timeout=30).json()
        assert usage["budget"]["spent_nanos"] == sum(costs)
        total = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
        assert (total["requests"], total["spentNanos"]) == (REQUESTS, sum(costs))
    finally:
        gw.stop()
    assert asyncio.run(count(pg_url)) == REQUESTS
