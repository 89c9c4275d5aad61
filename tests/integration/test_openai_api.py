"""The OpenAI-compatible data plane, driven by the official SDK, with a real fake upstream behind it."""

import asyncio
import json
import time

import httpx
import openai
import pytest

from tests.conftest import fake_config

# fake-chat costs $1.00 / $2.00 per million tokens: 1000 and 2000 nano-dollars per token.
IN, OUT = 1000, 2000


def client(gw, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)


def usage_records(gw, key):
    r = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"])
    return r.json()["data"]


def test_chat_completion_carries_usage_cost_and_budget_headers(gateway):
    key = gateway.key()
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model="fake-chat", messages=[{"role": "user", "content": "say five words [[reply:5]]"}])
    answer = raw.parse()
    assert answer.choices[0].message.content == " w0 w1 w2 w3 w4"
    assert answer.model == "fake-chat"  # our name, not the upstream's
    # words(4) + 4 per message + 3 = 11 prompt tokens, 5 completion tokens
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 5)
    cost = 11 * IN + 5 * OUT
    assert int(raw.headers["x-request-cost-nanos"]) == cost
    assert raw.headers["x-request-cost"] == "0.000021"
    assert raw.headers["x-budget-limit"] == "0.14"
    assert raw.headers["x-budget-remaining"] == "0.139979"
    assert raw.headers["x-budget-reset"].endswith(":00:00Z")
    report = usage_records(gateway, key)
    assert report["total"]["spentNanos"] == cost and report["total"]["requests"] == 1


def test_streaming_relays_chunks_and_reports_usage_only_when_asked(gateway):
    key = gateway.key()
    c = client(gateway, key)
    chunks = list(c.chat.completions.create(model="fc", messages=[{"role": "user", "content": "hi [[reply:4]]"}],
                                            stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == " w0 w1 w2 w3"
    assert all(ch.usage is None for ch in chunks)  # the client did not ask: no usage chunk
    chunks = list(c.chat.completions.create(model="fc", messages=[{"role": "user", "content": "hi [[reply:4]]"}],
                                            stream=True, stream_options={"include_usage": True}))
    final = chunks[-1]
    assert final.choices == [] and final.usage.completion_tokens == 4
    assert final.usage.model_extra["cost_nanos"] == 9 * IN + 4 * OUT
    report = usage_records(gateway, key)
    assert report["total"]["spentNanos"] == 2 * (9 * IN + 4 * OUT)


def test_async_client_stream_and_tool_calls(gateway):
    key = gateway.key()

    async def main():
        c = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key["sk"], max_retries=0)
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}]
        answer = await c.chat.completions.create(model="fake-chat", tools=tools, tool_choice="auto",
                                                 messages=[{"role": "user", "content": "weather? [[tool:get_weather]]"}])
        call = answer.choices[0].message.tool_calls[0]
        assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
        assert answer.choices[0].finish_reason == "tool_calls"
        stream = await c.chat.completions.create(model="fake-chat", tools=tools, stream=True,
                                                 messages=[{"role": "user", "content": "weather? [[tool:get_weather]]"}])
        arguments = ""
        async for chunk in stream:
            for choice in chunk.choices:
                for tc in choice.delta.tool_calls or ():
                    arguments += tc.function.arguments or ""
        assert json.loads(arguments) == {"city": "Paris"}
        await c.close()

    asyncio.run(main())


def test_every_other_parameter_reaches_the_upstream_untouched(gateway, fake_upstream):
    key = gateway.key()
    params = dict(
        temperature=0.3, top_p=0.9, seed=7, stop=["END"], presence_penalty=0.1, frequency_penalty=0.2,
        response_format={"type": "json_object"}, logit_bias={"50256": -100}, user="u-1", parallel_tool_calls=False,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], tool_choice="none",
        extra_body={"top_k": 40, "vendor_option": {"x": 1}},
    )
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "what is this? [[echo]]"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]
    answer = client(gateway, key).chat.completions.create(model="fake-chat", messages=messages, **params)
    seen = json.loads(answer.choices[0].message.content)
    for name, value in params.items():
        if name == "extra_body":
            for k, v in value.items():
                assert seen[k] == v
        else:
            assert seen[name] == value, name
    assert seen["messages"] == messages
    assert seen["model"] == "fake-upstream-chat"  # the upstream's own name for the model
    assert seen["max_tokens"] == 4096  # explicit: the model's output limit, fully reserved


def test_completions_and_embeddings(gateway):
    key = gateway.key()
    c = client(gateway, key)
    done = c.completions.create(model="fake-chat", prompt="one two three [[reply:3]]")
    assert done.choices[0].text == " w0 w1 w2" and done.usage.prompt_tokens == 4
    emb = c.embeddings.create(model="fake-embed", input=["alpha beta", "gamma"])
    assert len(emb.data) == 2 and emb.usage.prompt_tokens == 3
    report = usage_records(gateway, key)
    # fake-embed costs $0.10 per million input tokens: 3 tokens = 300 nano-dollars
    assert report["total"]["spentNanos"] == (4 * IN + 3 * OUT) + 300


def test_models_lists_what_the_gateway_serves_with_prices(gateway):
    key = gateway.key()
    data = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {key['sk']}"}).json()["data"]
    by_id = {m["id"]: m for m in data}
    assert set(by_id) == {"fake-chat", "fake-embed"}
    assert by_id["fake-chat"]["pricing"]["input_per_mtok"] == 1.0
    assert by_id["fake-chat"]["pricing"]["output_per_mtok"] == 2.0
    assert by_id["fake-chat"]["aliases"] == ["fc"]
    assert {m.id for m in client(gateway, key).models.list()} == set(by_id)


def test_models_answer_401_without_a_valid_key_like_openai(gateway):
    """Clients' "test connection" buttons call GET /v1/models: a wrong key must fail there."""
    key = gateway.key()
    gateway.manage("DELETE", f"/api/keys/{key['key_id']}", key["mk"])
    for path in ("/v1/models", "/v1/models/fake-chat", "/v1/models/no-such-model"):
        assert httpx.get(gateway.url + path).status_code == 401
        for token in ("sk_not_a_key", "wrong", key["mk"], gateway.admin_token):
            r = httpx.get(gateway.url + path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (path, token, r.text)
            assert r.json()["error"]["code"] == "invalid_api_key"
        r = httpx.get(gateway.url + path, headers={"Authorization": f"Bearer {key['sk']}"})  # revoked
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_revoked"
    bad = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk_not_a_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.AuthenticationError):
        bad.models.retrieve("fake-chat")


def test_one_model_by_id_or_alias_and_404_for_an_unknown_one(gateway):
    key = gateway.key()
    c = client(gateway, key)
    model = c.models.retrieve("fake-chat")
    assert (model.id, model.object, model.owned_by) == ("fake-chat", "model", "tollgate")
    listed = {m.id: m for m in c.models.list()}
    assert model.model_dump() == listed["fake-chat"].model_dump()
    assert c.models.retrieve("fc").id == "fake-chat"  # an alias names the same model
    assert c.models.retrieve("fake-embed").capabilities == ["embeddings"]
    with pytest.raises(openai.NotFoundError) as info:
        c.models.retrieve("no-such-model")
    error = info.value.body
    assert info.value.status_code == 404
    assert error["code"] == "model_not_found" and error["param"] == "model" and "no-such-model" in error["message"]


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "invalid_request"),
        ({"model": "fake-chat"}, 400, "invalid_request"),
        ({"model": "fake-chat", "messages": "hello"}, 400, "invalid_request"),
        ({"model": "fake-chat", "messages": [{"role": "wizard", "content": "x"}]}, 400, "invalid_request"),
        ({"model": "fake-chat", "messages": [{"role": "user", "content": 5}]}, 400, "invalid_request"),
        ({"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}, 400, "invalid_request"),
        ({"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "invalid_request"),
        ({"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, 400, "invalid_request"),
        ({"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, 400, "invalid_request"),
        ({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, 404, "model_not_found"),
        ({"model": "fake-embed", "messages": [{"role": "user", "content": "x"}]}, 400, "model_not_supported"),
        ([1, 2, 3], 400, "invalid_request"),
    ],
)
def test_malformed_requests_get_openai_shaped_4xx(gateway, body, status, code):
    key = gateway.key()
    r = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key['sk']}"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"] and "type" in error and "param" in error


def test_bad_json_unknown_keys_and_huge_bodies(gateway):
    key = gateway.key()
    headers = {"Authorization": f"Bearer {key['sk']}", "Content-Type": "application/json"}
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b'{"model": ', headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"x" * (9 * 1024 * 1024), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    for auth in ({}, {"Authorization": "Bearer sk_nope"}, {"Authorization": "Bearer mk_wrong_kind"},
                 {"Authorization": "Basic abc"}):
        r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "fake-chat"}, headers=auth)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    # nothing was charged for any of it
    assert usage_records(gateway, key)["total"]["spentNanos"] == 0


def test_a_client_that_abandons_a_stream_is_billed_for_what_was_generated(gateway, fake_upstream):
    key = gateway.key()
    c = client(gateway, key)
    stream = c.chat.completions.create(model="fake-chat", stream=True,
                                       messages=[{"role": "user", "content": "long [[reply:400]] [[delay:0.02]]"}])
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received == 10:
            stream.close()
            break
    # The upstream sees the cut: its generator stops well before 400 tokens.
    deadline = time.monotonic() + 10
    stats = {}
    while time.monotonic() < deadline:
        stats = httpx.get(fake_upstream.url + "/_stats").json()
        if stats["cancelled"]:
            break
        time.sleep(0.05)
    assert stats["cancelled"] == 1
    [generated] = stats["cancelled_tokens"]
    assert 10 <= generated < 100
    # Billing: the prompt and the tokens relayed before the cut, counted by the gateway. With no
    # tokenizer for this model that count is an upper bound: a token per byte relayed (the fake's
    # tokens are " w0" to " w99", at most 4 bytes each), never fewer than the tokens relayed.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        report = usage_records(gateway, key)
        if report["total"]["requests"]:
            break
        time.sleep(0.05)
    spent = report["total"]["spentNanos"]
    out_tokens = report["total"]["outputTokens"]
    assert received <= out_tokens <= 4 * (generated + 1)
    assert spent == report["total"]["inputTokens"] * IN + out_tokens * OUT
    usage = httpx.get(gateway.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}).json()
    assert usage["budget"]["spent_nanos"] == spent
    assert usage["budget"]["reserved"] == 0


def test_upstream_failures_become_clean_502_504_and_release_the_reservation(gateway_factory, upstream_factory):
    broken = upstream_factory("broken", fail_status=503)
    config = fake_config(broken.url)
    config["upstreams"].append({"name": "dead", "base_url": "http://127.0.0.1:9/v1", "connect_timeout": 1})
    config["models"].append({"id": "dead-chat", "upstream": "dead", "input_per_mtok": 1, "output_per_mtok": 2})
    gw = gateway_factory(config)
    key = gw.key()
    c = client(gw, key)
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="fake-chat", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_unavailable"
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="dead-chat", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}).json()
    assert usage["budget"]["spent"] == 0 and usage["budget"]["reserved"] == 0


def test_a_slow_upstream_times_out_with_504(gateway_factory, fake_upstream):
    config = fake_config(fake_upstream.url)
    config["upstreams"][0]["first_byte_timeout"] = 0.5
    gw = gateway_factory(config)
    key = gw.key()
    started = time.monotonic()
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key['sk']}"},
                   json={"model": "fake-chat", "messages": [{"role": "user", "content": "[[head-delay:5]]"}]}, timeout=30)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 5  # it did not wait for the upstream
    usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}).json()
    assert usage["budget"]["reserved"] == 0


def test_fallback_chain_moves_to_the_next_model(gateway_factory, upstream_factory):
    broken = upstream_factory("broken", fail_status=500)
    good = upstream_factory("good")
    config = fake_config(good.url)
    config["upstreams"].append({"name": "broken", "base_url": broken.url + "/v1"})
    config["models"].insert(0, {"id": "primary", "upstream": "broken", "input_per_mtok": 1, "output_per_mtok": 2,
                                "fallbacks": ["fake-chat"]})
    gw = gateway_factory(config)
    key = gw.key()
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="primary", messages=[{"role": "user", "content": "x [[reply:2]]"}])
    assert raw.headers["x-tollgate-model"] == "fake-chat"
    assert raw.headers["x-tollgate-fallbacks"] == "1"
    assert raw.parse().choices[0].message.content == " w0 w1"


def test_upstream_client_errors_pass_through_without_charge(gateway):
    key = gateway.key()
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway, key).chat.completions.create(model="fake-chat",
                                                     messages=[{"role": "user", "content": "[[status:400]]"}])
    assert "fake upstream" in info.value.message
    assert usage_records(gateway, key)["total"]["spentNanos"] == 0
