"""Each provider quirk of docs/upstream-quirks.md, reproduced by a fake upstream, through the real gateway.

The fake (tests/fakes/quirky_upstream.py) plays the provider named by the model the gateway sends;
the official SDK talks to the gateway. For every place a provider puts its usage, the bill is
exactly the provider's count; a stream without usage is billed an upper bound and says so; error
bodies of every shape come back in the API's shape; a rate-limited upstream's wait is passed on.
"""

from __future__ import annotations

import sys
import uuid

import anthropic
import httpx
import openai
import pytest

from tests.support.processes import Process, free_port
from tests.fakes import quirky_upstream as quirky

IN, OUT = 1000, 3000  # nanos per token ($1 and $3 per million)
TEXT = "".join(quirky.ANSWER)
USAGE_PLACES = ["openai", "usage-in-finish", "x-groq", "usage-in-choice", "usage-every-chunk", "keep-alive",
                "reasoning"]
QUIRKS = [*USAGE_PLACES, "no-stream-usage", "uuid-request-id", "error-vllm", "error-detail", "rate-limited",
          "reset-header"]


@pytest.fixture(scope="module")
def quirky_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quirky")
    port = free_port()
    proc = Process([sys.executable, "-m", "tests.fakes.quirky_upstream", "--port", str(port)],
                   f"http://127.0.0.1:{port}", tmp / "quirky.log").start("/v1/models")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, quirky_server):
    from tests.support.processes import Gateway

    tmp = tmp_path_factory.mktemp("quirks-gateway")
    upstream = {"name": "quirky", "base_url": quirky_server.url + "/v1", "api_key_env": "QUIRKY_KEY",
                "headers": {"X-Vendor-Version": "2024-06-01"}, "forward_headers": ["X-Title"]}
    bare = {"name": "bare", "base_url": quirky_server.url + "/v1", "request_id_header": False}
    prices = {"input_per_mtok": "1", "output_per_mtok": "3", "max_output": 256}
    models = [{"id": q, "upstream": "quirky", "upstream_model": q, **prices} for q in QUIRKS]
    models.append({"id": "bare-openai", "upstream": "bare", "upstream_model": "openai", **prices})
    config = {"upstreams": [upstream, bare], "models": models,
              "plans": [{"slug": "quirks", "window": "5h", "budget_per_window": "1", "rpm": 10000, "tpm": 10_000_000}]}
    gateway = Gateway(tmp, config, {"QUIRKY_KEY": "sk-upstream-secret"})
    gateway.start("/health")
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def key(gw) -> dict:
    return gw.key(plan="quirks", name="quirks")


def client(gw, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)


def completion_tokens(model: str) -> int:
    return len(quirky.ANSWER) + (len(quirky.REASONING) if model == "reasoning" else 0)


@pytest.mark.parametrize("model", USAGE_PLACES)
def test_wherever_a_provider_puts_its_stream_usage_the_bill_is_its_count(model, gw, key):
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model=model, stream=True, stream_options={"include_usage": True}, messages=[{"role": "user", "content": "hi"}])
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (quirky.PROMPT, completion_tokens(model))
    assert not usage.model_extra.get("estimated") and usage.model_extra.get("usage_basis", "upstream") == "upstream"
    assert usage.model_extra["cost_nanos"] == quirky.PROMPT * IN + completion_tokens(model) * OUT


@pytest.mark.parametrize("model", USAGE_PLACES)
def test_a_whole_answer_in_each_providers_shape_is_billed_its_count(model, gw, key):
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}])
    answer = raw.parse()
    assert answer.choices[0].message.content == TEXT
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (quirky.PROMPT, completion_tokens(model))
    assert int(raw.headers["x-request-cost-nanos"]) == quirky.PROMPT * IN + completion_tokens(model) * OUT


def test_a_stream_with_no_usage_is_billed_an_upper_bound_and_flagged(gw, key):
    chunks = list(client(gw, key).chat.completions.create(
        model="no-stream-usage", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}]))
    usage = chunks[-1].usage
    assert usage.model_extra["usage_basis"] == "bound" and usage.model_extra["estimated"] is True
    # Never below the real count: every streamed piece is at least a token, every token at least a byte.
    assert usage.completion_tokens >= len(quirky.ANSWER) and usage.completion_tokens == len(TEXT.encode())


def test_the_request_id_is_a_uuid_that_every_server_accepts(gw, key, quirky_server):
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="uuid-request-id", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content == TEXT
    request_id = raw.headers["x-request-id"]
    assert str(uuid.UUID(request_id)) == request_id
    seen = httpx.get(f"{quirky_server.url}/_headers/{request_id}").json()
    assert {k.lower(): v for k, v in seen.items()}["x-request-id"] == request_id


def test_an_upstream_gets_its_own_headers_and_only_the_client_headers_it_lists(gw, key, quirky_server):
    raw = client(gw, key).with_options(default_headers={"X-Title": "my app", "X-Secret-Client": "do-not-pass"}) \
        .chat.completions.with_raw_response.create(model="openai", messages=[{"role": "user", "content": "hi"}])
    seen = {k.lower(): v for k, v in httpx.get(f"{quirky_server.url}/_headers/{raw.headers['x-request-id']}").json().items()}
    assert seen["x-vendor-version"] == "2024-06-01" and seen["x-title"] == "my app"
    assert seen["authorization"] == "Bearer sk-upstream-secret"  # the upstream's key, never the client's
    assert "x-secret-client" not in seen and key["sk"] not in str(seen)
    assert "x-stainless-lang" not in seen  # the SDK's own headers stay with the gateway too
    client(gw, key).chat.completions.create(model="bare-openai", messages=[{"role": "user", "content": "hi"}])
    bare = {k.lower() for k in httpx.get(f"{quirky_server.url}/_last_headers").json()}
    assert "x-request-id" not in bare and "x-vendor-version" not in bare and "x-title" not in bare


@pytest.mark.parametrize(("model", "status", "text"), [("error-vllm", 400, "max_tokens is too large"),
                                                       ("error-detail", 422, "must be at most 2")])
def test_error_bodies_of_every_shape_come_back_in_the_apis_shape_and_cost_nothing(model, status, text, gw, key):
    with pytest.raises(openai.APIStatusError) as caught:
        client(gw, key).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == status and text in caught.value.body["message"]
    c = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=key["sk"], max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        c.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == status and caught.value.body["type"] == "error"
    assert text in caught.value.body["error"]["message"]


@pytest.mark.parametrize(("model", "wait"), [("rate-limited", "3"), ("reset-header", "90")])
def test_a_rate_limited_upstreams_wait_is_passed_on_as_a_503_not_a_budget_429(model, wait, gw, key):
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key['sk']}"},
                   json={"model": model, "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert r.status_code == 503 and r.headers["retry-after"] == wait
    assert r.json()["error"]["code"] == "upstream_busy"
    assert "x-request-cost-nanos" not in r.headers or r.headers["x-request-cost-nanos"] == "0"
