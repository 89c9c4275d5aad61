"""With no config at all, the gateway serves the bundled models: real chat, streaming and embeddings."""

import math

import httpx
import openai
import pytest

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory):
    from tests.support.processes import Gateway

    gw = Gateway(tmp_path_factory.mktemp("local"), {})  # no upstreams, no models: the embedded default
    gw.start("/health", timeout=120)
    yield gw
    gw.stop()


def test_chat_stream_and_embeddings_with_the_bundled_models(local_gateway):
    key = local_gateway.key(plan="standard")
    c = openai.OpenAI(base_url=local_gateway.url + "/v1", api_key=key["sk"], max_retries=0)
    models = {m.id for m in c.models.list()}
    assert {"smollm2-135m-instruct", "all-minilm-l6-v2"} <= models

    raw = c.chat.completions.with_raw_response.create(
        model="smollm2", max_tokens=12, temperature=0, messages=[{"role": "user", "content": "What is the capital of France?"}])
    answer = raw.parse()
    assert answer.choices[0].message.content.strip()
    u = answer.usage
    assert 0 < u.completion_tokens <= 12 and u.prompt_tokens > 5
    # $0.02 / $0.05 per million tokens: 20 and 50 nano-dollars per token
    assert int(raw.headers["x-request-cost-nanos"]) == u.prompt_tokens * 20 + u.completion_tokens * 50

    chunks = list(c.chat.completions.create(model="smollm2-135m-instruct", max_tokens=8, stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "Say hello."}]))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.strip()
    final = chunks[-1].usage
    assert final.completion_tokens <= 8 and final.model_extra["cost_nanos"] == final.prompt_tokens * 20 + final.completion_tokens * 50

    emb = c.embeddings.create(model="all-minilm-l6-v2", input=["a cat sits on the mat", "the stock market fell"])
    vectors = [d.embedding for d in emb.data]
    assert all(len(v) == 384 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in vectors)
    assert emb.usage.prompt_tokens > 0

    usage = httpx.get(local_gateway.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}).json()
    records = local_gateway.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    assert usage["budget"]["spent_nanos"] == records["spentNanos"] > 0
    assert records["requests"] == 3


CATEGORIES = ("simple", "general", "reasoning", "code", "agent")


def test_model_auto_routes_every_category_to_the_bundled_model(local_gateway):
    """A fresh gateway answers README's OpenClaw provider (`tollgate/auto`, openai-completions, a
    4096-token maxTokens, streamed with usage) and says where `auto` goes in GET /v1/models."""
    key = local_gateway.key(plan="standard")
    auth = {"Authorization": f"Bearer {key['sk']}"}
    listed = {m["id"]: m for m in httpx.get(local_gateway.url + "/v1/models", headers=auth).json()["data"]}
    routes = {c: ["smollm2-135m-instruct"] for c in CATEGORIES}
    assert listed["auto"]["routes"] == routes
    assert httpx.get(local_gateway.url + "/v1/models/auto", headers=auth).json()["routes"] == routes

    c = openai.OpenAI(base_url=local_gateway.url + "/v1", api_key=key["sk"], max_retries=0)
    with c.chat.completions.with_streaming_response.create(
            model="auto", max_tokens=4096, temperature=0, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
                      {"role": "user", "content": "Say hello."}]) as raw:
        assert raw.headers["x-tollgate-model"] == "smollm2-135m-instruct" and raw.headers["x-tollgate-route"]
        chunks = list(raw.parse())
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices).strip()
    assert chunks[-1].usage.completion_tokens > 0


def test_anthropic_count_tokens_is_exact_on_the_bundled_model(local_gateway):
    """The in-process model counts with its own tokenizer and chat template: count_tokens says
    `exact` and agrees with what the answer then bills; the answer names the model, not `auto`."""
    key = local_gateway.key(plan="standard")
    body = {"model": "auto", "system": [{"type": "text", "text": "You are terse."}],
            "messages": [{"role": "user", "content": "Name a colour."},
                         {"role": "system", "content": "Answer in one word."}]}
    r = httpx.post(local_gateway.url + "/anthropic/v1/messages/count_tokens", json=body, headers={"x-api-key": key["sk"]})
    assert r.status_code == 200 and r.json()["exact"] is True, r.text
    message = httpx.post(local_gateway.url + "/anthropic/v1/messages", headers={"x-api-key": key["sk"]}, timeout=120,
                         json={**body, "max_tokens": 4, "temperature": 0}).json()
    assert message["model"] == "smollm2-135m-instruct"
    assert message["usage"]["input_tokens"] == r.json()["input_tokens"]
