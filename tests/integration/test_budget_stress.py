"""The hard cap under load: 500 concurrent requests at a pool that affords about 100, twenty times.

A mix of streamed, non-streamed and abandoned streams, varied prompt sizes and
max_tokens. Each repetition checks: settled spend <= the limit, every refusal
carries the full 429 contract, no reservation remains, /v1/usage equals the sum
of the usage records, and the share of phantom refusals (refused although the
budget left after every settlement would have paid for the request).
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import aiohttp
import httpx
import pytest

from tests.conftest import minilm_tokenizer
from tests.fakes.openai_upstream import COMMON_WORDS
from tests.integration.budget_support import Counter, check_budget_refusal, metered_config
from tests.support.processes import Gateway, start_upstream

REPETITIONS = 20
REQUESTS = 500
BUDGET = "0.04"
LIMIT = 40_000_000


@pytest.fixture(scope="module")
def stress_gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stress")
    upstream = start_upstream(tmp, "stress", tokenizer=minilm_tokenizer())
    gw = Gateway(tmp, metered_config(upstream.url, BUDGET))
    gw.start("/health")
    yield gw
    gw.stop()
    upstream.stop()


def make_requests(rng: random.Random) -> list[dict]:
    requests = []
    for _ in range(REQUESTS):
        kind = rng.choices(["json", "stream", "abandon"], weights=[4, 4, 2])[0]
        words = " ".join(rng.choice(COMMON_WORDS) for _ in range(rng.randint(5, 400)))
        reply = rng.randint(1, 120)
        max_tokens = rng.choice([None, 16, 64, 200])
        directives = f" [[reply:{reply}]]" + (" [[delay:0.002]]" if kind == "abandon" else "")
        requests.append({"kind": kind, "prompt": words + directives, "reply": reply, "max_tokens": max_tokens,
                         "cut_after": rng.randint(2, 15)})
    return requests


async def fire(session: aiohttp.ClientSession, url: str, key: str, req: dict) -> dict:
    body = {"model": "metered", "messages": [{"role": "user", "content": req["prompt"]}],
            "stream": req["kind"] != "json"}
    if req["max_tokens"] is not None:
        body["max_tokens"] = req["max_tokens"]
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
        result = {"status": resp.status, "headers": dict(resp.headers), "at": time.time()}
        if resp.status != 200:
            result["body"] = await resp.json(content_type=None)
            return result
        if req["kind"] == "json":
            await resp.read()
            return result
        chunks = 0
        async for line in resp.content:
            if line.startswith(b"data: {"):
                chunks += 1
            if req["kind"] == "abandon" and chunks >= req["cut_after"]:
                resp.close()  # the client goes away mid-stream
                result["abandoned"] = True
                break
        return result


def settle_view(gw: Gateway, key: dict, timeout: float = 20.0) -> dict:
    """/v1/usage once every reservation (abandoned streams included) has settled."""
    deadline = time.monotonic() + timeout
    while True:
        usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}).json()
        if usage["budget"]["reserved"] == 0 or time.monotonic() > deadline:
            return usage
        time.sleep(0.05)


def storm(gw: Gateway, key: dict, requests: list[dict], limit: int) -> tuple[list[dict], dict, dict]:
    """Every request at once; then what held: only answers and budget 429s (each by the contract), spend
    within `limit`, nothing left reserved, the records summing to the spend. (results, /v1/usage, records)."""
    async def main():
        connector = aiohttp.TCPConnector(limit=len(requests))
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            return await asyncio.gather(*(fire(session, gw.url + "/v1/chat/completions", key["sk"], r) for r in requests))

    results = asyncio.run(main())
    usage = settle_view(gw, key)
    records = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    assert all(res["status"] in (200, 429) for res in results), {res["status"] for res in results}
    assert usage["budget"]["spent_nanos"] <= limit
    assert usage["budget"]["reserved"] == 0 and all(b["reserved"] == 0 for b in usage["budgets"])
    assert usage["budget"]["spent_nanos"] == records["spentNanos"]
    for res in results:
        if res["status"] == 429:
            check_budget_refusal(res["status"], {k.lower(): v for k, v in res["headers"].items()}, res["body"],
                                 res["at"])
    return results, usage, records


def run_repetition(gw: Gateway, counter: Counter, seed: int) -> dict:
    key = gw.key(plan="metered", name=f"stress-{seed}")
    requests = make_requests(random.Random(seed))
    results, usage, records = storm(gw, key, requests, LIMIT)
    spent = usage["budget"]["spent_nanos"]
    refused = [(req, res) for req, res in zip(requests, results) if res["status"] == 429]
    left = LIMIT - spent
    phantom = [req for req, _ in refused if counter.real_cost(req["prompt"], req["reply"], req["max_tokens"]) <= left]
    return {"served": REQUESTS - len(refused), "refused": len(refused), "phantom": len(phantom), "spent": spent,
            "left": left, "abandoned": sum(1 for r in results if r.get("abandoned"))}


@pytest.mark.slow
def test_concurrent_mix_never_overspends_and_refuses_honestly(stress_gateway):
    counter = Counter()
    totals = {"served": 0, "refused": 0, "phantom": 0, "abandoned": 0}
    for seed in range(REPETITIONS):
        stats = run_repetition(stress_gateway, counter, seed)
        for k in totals:
            totals[k] += stats[k]
        assert stats["refused"] > 0 and stats["served"] >= 50, stats  # the pool really ran out
    rate = totals["phantom"] / (REQUESTS * REPETITIONS)
    print(f"\nstress: {json.dumps(totals)}; phantom refusal rate {rate:.4%}")
    assert totals["abandoned"] > 0
    assert rate < 0.01


def test_sequential_requests_have_no_phantom_refusals(stress_gateway):
    counter = Counter()
    key = stress_gateway.key(plan="metered", name="sequential")
    rng = random.Random(99)
    c = httpx.Client(timeout=30)
    refused = []
    for req in make_requests(rng)[:200]:
        body = {"model": "metered", "messages": [{"role": "user", "content": req["prompt"]}]}
        if req["max_tokens"] is not None:
            body["max_tokens"] = req["max_tokens"]
        r = c.post(stress_gateway.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key['sk']}"})
        if r.status_code == 429:
            check_budget_refusal(429, r.headers, r.json())
            refused.append(req)
        else:
            assert r.status_code == 200, r.text
    usage = settle_view(stress_gateway, key)
    left = LIMIT - usage["budget"]["spent_nanos"]
    assert refused, "the budget should run out within 200 requests"
    phantom = [q for q in refused if counter.real_cost(q["prompt"], q["reply"], q["max_tokens"]) <= left]
    assert phantom == []
    assert usage["budget"]["spent_nanos"] <= LIMIT
