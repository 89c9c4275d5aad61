"""Relay details: deployments by load, usage the upstream forgot, cancellation, and a clean shutdown."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import openai

from tests.conftest import fake_config
from tollgate.proxy.estimate import MESSAGE_OVERHEAD, REQUEST_OVERHEAD

IN, OUT = 1000, 2000


def test_the_least_busy_deployment_takes_the_next_request(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    config = fake_config(a.url)
    config["upstreams"].append({"name": "b", "base_url": b.url + "/v1"})
    config["models"][0]["upstream"] = ["fake", "b"]
    gw = gateway_factory(config)
    key = gw.key()

    async def main():
        c = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)
        async def one():
            await c.chat.completions.create(model="fake-chat", messages=[
                {"role": "user", "content": "slow [[reply:20]] [[head-delay:0.3]]"}])
        await asyncio.gather(*(one() for _ in range(10)))
        await c.close()

    asyncio.run(main())
    counts = [httpx.get(u.url + "/_stats").json()["requests"] for u in (a, b)]
    assert sum(counts) == 10 and abs(counts[0] - counts[1]) <= 1, counts


def test_an_answer_without_usage_is_billed_at_a_true_upper_bound_and_says_so(gateway):
    key = gateway.key()
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key["sk"], max_retries=0)
    content = "abc [[reply:6]] [[no-usage]]"
    # No tokenizer for this model: the prompt at the bound its reservation was made for (its UTF-8
    # bytes plus the template allowances of proxy/estimate.py), the answer at one token per byte.
    prompt_bound = REQUEST_OVERHEAD + MESSAGE_OVERHEAD + len(content.encode())
    raw = c.chat.completions.with_raw_response.create(model="fake-chat", messages=[{"role": "user", "content": content}])
    answer = raw.parse()
    text = answer.choices[0].message.content
    assert answer.usage.model_extra["estimated"] is True and answer.usage.model_extra["usage_basis"] == "bound"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt_bound, len(text.encode()))
    cost = int(raw.headers["x-request-cost-nanos"])
    assert cost == prompt_bound * IN + len(text.encode()) * OUT  # nanos per token
    stream = c.chat.completions.create(model="fake-chat", stream=True, stream_options={"include_usage": True},
                                       messages=[{"role": "user", "content": content}])
    chunks = list(stream)
    usage = chunks[-1].usage
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert usage.model_extra["estimated"] is True and usage.model_extra["usage_basis"] == "bound"
    assert usage.prompt_tokens == prompt_bound and usage.completion_tokens >= len(streamed.encode()) >= 6
    records = gateway.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    assert records["requests"] == 2 and records["spentNanos"] == cost + usage.model_extra["cost_nanos"]


def test_a_client_that_hangs_up_before_the_answer_cancels_the_upstream_request(gateway, fake_upstream):
    key = gateway.key()
    started = time.monotonic()
    try:
        httpx.post(gateway.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key['sk']}"}, timeout=0.3,
                   json={"model": "fake-chat", "messages": [{"role": "user", "content": "[[head-delay:5]]"}]})
    except httpx.ReadTimeout:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not httpx.get(fake_upstream.url + "/_stats").json()["cancelled"]:
        time.sleep(0.02)
    assert httpx.get(fake_upstream.url + "/_stats").json()["cancelled"] == 1
    assert time.monotonic() - started < 4  # at once, not when the upstream would have answered
    usage = httpx.get(gateway.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}).json()
    assert usage["budget"]["reserved"] == 0 and usage["budget"]["spent"] == 0


def test_a_clean_shutdown_loses_no_usage_record(gateway_factory, fake_upstream):
    config = fake_config(fake_upstream.url)
    config["plans"].append({"slug": "rpm20", "budget_per_window": 1, "rpm": 20, "tpm": 1_000_000})
    gateway = gateway_factory(config)
    key = gateway.key(plan="rpm20")
    headers = {"Authorization": f"Bearer {key['sk']}"}

    async def burst():
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(client.post(gateway.url + "/v1/chat/completions", headers=headers, json={
                "model": "fake-chat", "messages": [{"role": "user", "content": f"n{i} [[reply:3]]"}]}) for i in range(40)))

    answers = asyncio.run(burst())
    # 20 served; 20 refused per minute, and refusals are recorded in the background batch
    assert sorted(r.status_code for r in answers) == [200] * 20 + [429] * 20
    gateway.proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells why it stopped.
    assert gateway.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "shut down cleanly" in gateway.log.read_text()
    gateway.start("/health")
    records = gateway.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    assert records["requests"] == 40
    assert records["spentNanos"] == httpx.get(gateway.url + "/v1/usage", headers=headers).json()["budget"]["spent_nanos"]
