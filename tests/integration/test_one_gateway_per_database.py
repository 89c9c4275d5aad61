"""One gateway owns a database's ledger at a time: a second one stops at start-up, and takes over once the first stops."""

from __future__ import annotations

import subprocess

import httpx

from tests.conftest import minilm_tokenizer
from tests.integration.budget_support import metered_config
from tests.support.processes import Gateway, start_upstream


def chat(gw: Gateway, sk: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "metered", "max_tokens": 5, "messages": [{"role": "user", "content": "hi [[reply:5]]"}]})


def spent(gw: Gateway, sk: str) -> int:
    usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {sk}"}, timeout=30).json()
    return usage["budget"]["spent_nanos"]


def test_a_second_gateway_on_the_same_database_stops_with_a_clear_message(tmp_path):
    upstream = start_upstream(tmp_path, "owner", tokenizer=minilm_tokenizer())
    config = metered_config(upstream.url, "100")
    first = Gateway(tmp_path, config)
    first.start("/health")
    try:
        key = first.key(plan="metered")
        assert chat(first, key["sk"]).status_code == 200
        charged = spent(first, key["sk"])
        assert charged > 0

        second = Gateway(tmp_path, config)  # the same tollgate.db, another port
        done = subprocess.run(second.args, env=second.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert "another tollgate gateway is serving from" in done.stdout + done.stderr

        # The first one never noticed: it still serves and bills.
        assert chat(first, key["sk"]).status_code == 200
        charged = spent(first, key["sk"])
    finally:
        first.stop()
        upstream.stop()

    upstream = start_upstream(tmp_path, "taker", tokenizer=minilm_tokenizer())
    config = metered_config(upstream.url, "100")
    second = Gateway(tmp_path, config)
    second.start("/health")  # the lock went with the first process
    try:
        assert spent(second, key["sk"]) == charged  # every settlement of the first one is in the ledger
        assert chat(second, key["sk"]).status_code == 200
    finally:
        second.stop()
        upstream.stop()
