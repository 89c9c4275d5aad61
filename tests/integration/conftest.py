"""The real gateway behind the agent toolkit's end-to-end tests (see agent_fixtures.py).

A fake upstream that plays the toolkit's scripted model, counting tokens with a
real tokenizer that the gateway also uses (so reservations are tight), and a
plan with a 2-second window that affords a few steps of the tests' tasks.
"""

from __future__ import annotations

import pytest

from tests.conftest import minilm_tokenizer
from tests.support.processes import Gateway, start_upstream

AGENT_WINDOW = "2s"
AGENT_BUDGET = "0.005"  # a step of the tests' tasks costs about $0.0015 on tg-scripted


@pytest.fixture(scope="session")
def agent_gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agent-gateway")
    upstream = start_upstream(tmp, "scripted", tokenizer=minilm_tokenizer())
    config = {
        "upstreams": [{"name": "scripted", "base_url": upstream.url + "/v1", "timeout": 30}],
        "models": [
            {"id": "tg-scripted", "upstream": "scripted", "input_per_mtok": "5", "output_per_mtok": "15",
             "max_output": 64, "tokenizer": minilm_tokenizer()},
            {"id": "tg-scripted-mini", "upstream": "scripted", "input_per_mtok": "0.5", "output_per_mtok": "1.5",
             "max_output": 64, "tokenizer": minilm_tokenizer()},
        ],
        "plans": [{"slug": "agent", "window": AGENT_WINDOW, "budget_per_window": AGENT_BUDGET, "rpm": 10000,
                   "tpm": 10_000_000}],
    }
    gw = Gateway(tmp, config)
    gw.start("/health")
    yield gw
    gw.stop()
    upstream.stop()


@pytest.fixture
def tollgate_agent_budget_key(agent_gateway) -> tuple[str, str]:
    key = agent_gateway.key(plan="agent", name="agent")
    return agent_gateway.url + "/v1", key["sk"]


@pytest.fixture
def tollgate_agent_revoked_key(agent_gateway) -> tuple[str, str]:
    key = agent_gateway.key(plan="agent", name="revoked")
    r = agent_gateway.manage("DELETE", f"/api/keys/{key['key_id']}", key["mk"])
    assert r.status_code == 200
    return agent_gateway.url + "/v1", key["sk"]


@pytest.fixture
def tollgate_agent_models() -> tuple[str, str]:
    return "tg-scripted", "tg-scripted-mini"
