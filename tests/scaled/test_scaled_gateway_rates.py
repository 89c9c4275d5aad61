"""Per-minute limits through the HTTP API of two scaled instances: one bucket per key, wherever it is used.

The Redis ledger takes the key's rate bucket in its reserve script (and corrects it in its settle
script), so a key's rpm is one count across instances, and a request refused for its rate holds none
of the budget.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.scaled import ScaledGateway, chat, two_instances

PLANS = {"plans": [{"slug": "slow", "name": "Slow", "window": "5h", "budget_per_window": "1", "rpm": 4,
                    "tpm": 1000000}]}


@pytest.fixture
def pair(tmp_path, pg_url, redis_server, upstream_factory) -> Iterator[tuple[ScaledGateway, ScaledGateway]]:
    with two_instances(tmp_path, upstream_factory().url, pg_url, redis_server.url, 1, PLANS) as started:
        yield started


def test_a_keys_rpm_is_one_count_across_instances_and_its_refusals_hold_no_budget(pair):
    a, b = pair
    key = a.key(plan="slow")
    served = [chat(gw, key["sk"]) for gw in (a, b, a, b)]  # four a minute, taken on either instance
    assert [r.status_code for r in served] == [200] * 4, [r.text for r in served]
    charged = sum(int(r.headers["x-request-cost-nanos"]) for r in served)
    for gw in (a, b):
        refused = chat(gw, key["sk"])
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert 0 < float(refused.headers["retry-after"]) <= 60
    usage = httpx.get(b.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}, timeout=30).json()
    # The refused requests charged nothing and hold nothing: the budget shows the four served ones only.
    budget = usage["budget"]
    assert budget["spent_nanos"] == charged > 0
    assert budget["remaining_nanos"] == budget["limit_nanos"] - charged  # nothing held beside it
