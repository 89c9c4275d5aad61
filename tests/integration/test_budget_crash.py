"""A gateway killed with SIGKILL mid-load: no settled spend lost, no budget locked once the TTL passes."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import httpx

from tests.conftest import minilm_tokenizer
from tests.integration.budget_support import metered_config
from tests.support.processes import Gateway

TTL = 4


async def one(session, url, sk, i, done: list):
    stream = i % 2 == 0
    body = {"model": "metered", "max_tokens": 60, "stream": stream,
            "messages": [{"role": "user", "content": f"the cat {i} [[reply:60]] [[delay:0.01]]"}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    try:
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {sk}"}) as resp:
            if resp.status != 200:
                return
            if not stream:
                await resp.read()
                done.append(int(resp.headers["x-request-cost-nanos"]))
                return
            cost, finished = None, False
            async for line in resp.content:
                if line.startswith(b"data: {") and b'"cost_nanos"' in line:
                    cost = json.loads(line[6:])["usage"]["cost_nanos"]
                if line.startswith(b"data: [DONE]"):
                    finished = True
            if finished and cost is not None:
                done.append(cost)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return  # cut by the kill


def test_sigkill_mid_load_loses_no_settled_spend_and_locks_nothing(tmp_path, upstream_factory):
    upstream = upstream_factory("crash", tokenizer=minilm_tokenizer())
    config = metered_config(upstream.url, "100", reservation_ttl=TTL)
    config["upstreams"][0]["timeout"] = TTL
    gw = Gateway(tmp_path, config)
    gw.start("/health")
    try:
        key = gw.key(plan="metered")
        done: list[int] = []

        async def load():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                tasks = []
                for i in range(120):
                    tasks.append(asyncio.ensure_future(one(session, gw.url + "/v1/chat/completions", key["sk"], i, done)))
                    await asyncio.sleep(0.01)
                    if i == 80:
                        gw.kill()  # SIGKILL to the whole process group, mid-load
                await asyncio.gather(*tasks)

        asyncio.run(load())
        assert done, "some requests should have completed before the kill"
        gw.start("/health")
        headers = {"Authorization": f"Bearer {key['sk']}"}
        usage = httpx.get(gw.url + "/v1/usage", headers=headers).json()
        records = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
        # Everything a client saw finish (with its cost) is in the ledger after the restart.
        assert records["requests"] >= len(done)
        assert usage["budget"]["spent_nanos"] == records["spentNanos"] >= sum(done)
        # Reservations of requests cut by the crash are held until the TTL (their spend is unknown)...
        assert usage["budget"]["reserved"] > 0
        # ...then freed.
        deadline = time.monotonic() + TTL + 5
        while usage["budget"]["reserved"] and time.monotonic() < deadline:
            time.sleep(0.2)
            usage = httpx.get(gw.url + "/v1/usage", headers=headers).json()
        assert usage["budget"]["reserved"] == 0
        r = httpx.post(gw.url + "/v1/chat/completions", headers=headers, timeout=30,
                       json={"model": "metered", "max_tokens": 3, "messages": [{"role": "user", "content": "[[reply:3]]"}]})
        assert r.status_code == 200
    finally:
        gw.stop()
