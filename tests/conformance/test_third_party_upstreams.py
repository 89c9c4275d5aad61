"""The data plane's checks, through the real gateway, with real third-party servers as upstreams.

For each path (llama-cpp-python's server directly; the LiteLLM proxy in front of it) the official
SDKs talk to the gateway, and every answer is compared with what the upstream itself says for the
same request sent to it directly: the same text, and billed tokens equal to the upstream's own
non-streamed count, streamed or not (the server sends no usage in a stream, so the gateway counts
with the model's tokenizer and chat template). A model with no tokenizer is billed an upper bound
that is never below the real count, and the record says so.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.conformance.conftest import LITELLM_KEY

IN, OUT = 200, 800  # nanos per token: $0.20 and $0.80 per million (conftest.SMOL_PRICES)
CHAT = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Write one sentence about the sea."}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]
PATHS = ["smol", "smol-via-litellm"]


@pytest.fixture(scope="module")
def key(conformance_gateway) -> dict:
    return conformance_gateway.key(plan="conformance", name="conformance")


def upstream_of(model: str, llama_server, litellm_proxy) -> tuple[str, dict]:
    if model == "smol-via-litellm":
        return litellm_proxy.url, {"Authorization": f"Bearer {LITELLM_KEY}"}
    return llama_server.url, {}


def direct(model: str, llama_server, litellm_proxy, path: str, body: dict) -> dict:
    """The upstream's own answer to the same request, non-streamed, with a request id it accepts."""
    url, headers = upstream_of(model, llama_server, litellm_proxy)
    r = httpx.post(f"{url}/v1{path}", json={**body, "model": "smollm", "stream": False}, timeout=120,
                   headers={**headers, "X-Request-Id": str(uuid.uuid4())})
    assert r.status_code == 200, r.text
    return r.json()


def record(gateway, request_id: str) -> dict:
    """The usage record the gateway wrote for a request (the ledger writes it in the background)."""
    db = Path(gateway.config_path).parent / "tollgate.db"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM usage_records WHERE request_id = ?", (request_id,)).fetchone()
        finally:
            conn.close()
        if row is not None:
            return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"no usage record for {request_id}")


def client(gateway, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key["sk"], max_retries=0, timeout=120)


@pytest.mark.parametrize("model", PATHS)
def test_a_chat_answer_is_relayed_intact_and_billed_as_the_upstream_counts(model, conformance_gateway, key,
                                                                           llama_server, litellm_proxy):
    body = {"messages": CHAT, "max_tokens": 40, "temperature": 0}
    expected = direct(model, llama_server, litellm_proxy, "/chat/completions", body)
    raw = client(conformance_gateway, key).chat.completions.with_raw_response.create(model=model, **body)
    answer = raw.parse()
    assert answer.model == model
    assert answer.choices[0].message.content == expected["choices"][0]["message"]["content"]
    counts = (expected["usage"]["prompt_tokens"], expected["usage"]["completion_tokens"])
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == counts
    assert int(raw.headers["x-request-cost-nanos"]) == counts[0] * IN + counts[1] * OUT
    uuid.UUID(raw.headers["x-request-id"])  # the id the upstream was sent, in the form it accepts
    row = record(conformance_gateway, raw.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"], row["cost"]) == (*counts, counts[0] * IN + counts[1] * OUT)
    # LiteLLM's usage is not used (its streams carry its own estimate): the gateway counted, and agreed.
    assert row["usage_basis"] == ("counted" if model == "smol-via-litellm" else "upstream")


@pytest.mark.parametrize("model", PATHS)
def test_a_streamed_chat_is_billed_exactly_what_the_upstream_counts_for_it_non_streamed(
        model, conformance_gateway, key, llama_server, litellm_proxy):
    body = {"messages": CHAT, "max_tokens": 40, "temperature": 0}
    expected = direct(model, llama_server, litellm_proxy, "/chat/completions", body)
    stream = client(conformance_gateway, key).chat.completions.with_raw_response.create(
        model=model, stream=True, stream_options={"include_usage": True}, **body)
    chunks = list(stream.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected["choices"][0]["message"]["content"]
    usage = chunks[-1].usage
    counts = (expected["usage"]["prompt_tokens"], expected["usage"]["completion_tokens"])
    assert (usage.prompt_tokens, usage.completion_tokens) == counts
    assert usage.model_extra["usage_basis"] == "counted"
    assert usage.model_extra["cost_nanos"] == counts[0] * IN + counts[1] * OUT
    row = record(conformance_gateway, stream.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"], row["usage_basis"]) == (*counts, "counted")


@pytest.mark.parametrize("model", PATHS)
def test_completions_streamed_and_not_are_billed_as_the_upstream_counts(model, conformance_gateway, key,
                                                                       llama_server, litellm_proxy):
    body = {"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}
    expected = direct(model, llama_server, litellm_proxy, "/completions", body)
    counts = (expected["usage"]["prompt_tokens"], expected["usage"]["completion_tokens"])
    c = client(conformance_gateway, key)
    answer = c.completions.create(model=model, **body)
    assert answer.choices[0].text == expected["choices"][0]["text"]
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == counts
    chunks = list(c.completions.create(model=model, stream=True, stream_options={"include_usage": True}, **body))
    assert "".join(ch.choices[0].text or "" for ch in chunks if ch.choices) == expected["choices"][0]["text"]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == counts


def test_a_request_with_tools_is_counted_as_the_server_renders_it(conformance_gateway, key, llama_server,
                                                                  litellm_proxy):
    """SmolLM2's chat template never shows tools to the model: the server and the count both leave them out."""
    body = {"messages": CHAT, "max_tokens": 30, "temperature": 0, "tools": TOOLS}
    expected = direct("smol", llama_server, litellm_proxy, "/chat/completions", body)
    counts = (expected["usage"]["prompt_tokens"], expected["usage"]["completion_tokens"])
    chunks = list(client(conformance_gateway, key).chat.completions.create(
        model="smol", stream=True, stream_options={"include_usage": True}, **body))
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == counts


def test_without_a_tokenizer_a_stream_is_billed_an_upper_bound_and_flagged(conformance_gateway, key,
                                                                          llama_server, litellm_proxy):
    body = {"messages": CHAT, "max_tokens": 40, "temperature": 0}
    expected = direct("smol", llama_server, litellm_proxy, "/chat/completions", body)["usage"]
    stream = client(conformance_gateway, key).chat.completions.with_raw_response.create(
        model="smol-uncounted", stream=True, stream_options={"include_usage": True}, **body)
    usage = list(stream.parse())[-1].usage
    assert usage.model_extra["usage_basis"] == "bound" and usage.model_extra["estimated"] is True
    assert usage.prompt_tokens >= expected["prompt_tokens"] and usage.completion_tokens >= expected["completion_tokens"]
    row = record(conformance_gateway, stream.headers["x-request-id"])
    assert row["usage_basis"] == "bound" and row["input_tokens"] >= expected["prompt_tokens"]


def test_the_anthropic_api_over_a_third_party_server_is_billed_as_it_counts(conformance_gateway, key,
                                                                           llama_server, litellm_proxy):
    body = {"messages": CHAT, "max_tokens": 40, "temperature": 0}
    expected = direct("smol", llama_server, litellm_proxy, "/chat/completions", body)
    counts = (expected["usage"]["prompt_tokens"], expected["usage"]["completion_tokens"])
    c = anthropic.Anthropic(base_url=conformance_gateway.url + "/anthropic", api_key=key["sk"], max_retries=0)
    message = c.messages.create(model="smol", system="You are terse.", max_tokens=40, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "Write one sentence about the sea."}])
    assert message.content[0].text == expected["choices"][0]["message"]["content"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == counts
    with c.messages.stream(model="smol", system="You are terse.", max_tokens=40, extra_body={"temperature": 0},
                           messages=[{"role": "user", "content": "Write one sentence about the sea."}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == expected["choices"][0]["message"]["content"]
    assert (final.usage.input_tokens, final.usage.output_tokens) == counts


def test_embeddings_are_relayed_as_the_server_sent_them_and_billed_its_count(conformance_gateway, key,
                                                                            llama_server):
    """Loaded with embeddings on, this server returns one vector per token for a model without pooling
    (a list of lists where OpenAI has one list): relayed as it came, billed at its count."""
    body = {"input": ["hello world", "the sea"]}
    expected = httpx.post(llama_server.url + "/v1/embeddings", json=body, timeout=60).json()
    raw = httpx.post(conformance_gateway.url + "/v1/embeddings", json={**body, "model": "smol-embed"}, timeout=60,
                     headers={"Authorization": f"Bearer {key['sk']}"})
    assert raw.status_code == 200, raw.text
    answer = raw.json()
    assert [d["embedding"] for d in answer["data"]] == [d["embedding"] for d in expected["data"]]
    assert answer["usage"]["prompt_tokens"] == expected["usage"]["prompt_tokens"] > 0
    assert int(raw.headers["x-request-cost-nanos"]) == expected["usage"]["prompt_tokens"] * IN
    sdk = client(conformance_gateway, key).embeddings.create(model="smol-embed", input="the sea")
    assert sdk.usage.prompt_tokens == expected["usage"]["prompt_tokens"] - 2  # "hello world" was 2 tokens


def test_what_the_server_refuses_comes_back_in_the_apis_shape_and_costs_nothing(conformance_gateway, key):
    """This server answers a parameter it cannot read with a 500 (its validation errors are
    `internal_server_error`): to the gateway that is the upstream failing, a 502 in OpenAI's shape."""
    usage_url, auth = conformance_gateway.url + "/v1/usage", {"Authorization": f"Bearer {key['sk']}"}
    before = httpx.get(usage_url, headers=auth).json()["budget"]["spent_nanos"]
    with pytest.raises(openai.APIStatusError) as caught:
        client(conformance_gateway, key).chat.completions.create(
            model="smol", max_tokens=5, messages=CHAT, extra_body={"repeat_penalty": "not a number"})
    assert caught.value.status_code == 502 and caught.value.body["code"] == "upstream_unavailable"
    assert "HTTP 500" in caught.value.body["message"]
    assert httpx.get(usage_url, headers=auth).json()["budget"]["spent_nanos"] == before


def test_a_client_leaving_mid_stream_stops_the_server_and_is_billed_for_what_it_read(conformance_gateway, key,
                                                                                   llama_server):
    # End-of-text banned, so that the answer runs to its full length unless stopped.
    body = {"model": "smol", "stream": True, "max_tokens": 600, "temperature": 0, "logit_bias": {"0": -100, "2": -100},
            "messages": [{"role": "user", "content": "Count from 1 to 1000, one number per line."}]}
    headers = {"Authorization": f"Bearer {key['sk']}"}
    with httpx.stream("POST", conformance_gateway.url + "/v1/chat/completions", json=body, headers=headers,
                      timeout=60) as r:
        request_id = r.headers["x-request-id"]
        for n, _ in enumerate(r.iter_raw()):
            if n >= 3:
                break
    row = record(conformance_gateway, request_id)
    assert row["status"] == 499 and row["usage_basis"] == "counted" and row["input_tokens"] > 0
    assert row["cost"] == row["input_tokens"] * IN + row["output_tokens"] * OUT  # the text it was sent
    # The server stopped generating: it answers a new request at once (it serves one at a time,
    # and the 600 tokens asked for take it several seconds).
    started = time.monotonic()
    r = httpx.post(llama_server.url + "/v1/chat/completions", timeout=60,
                   json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})
    assert r.status_code == 200
    quick = time.monotonic() - started
    started = time.monotonic()
    r = httpx.post(llama_server.url + "/v1/chat/completions", timeout=120,
                   json={k: v for k, v in body.items() if k not in ("model", "stream")})
    full = time.monotonic() - started
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 600
    assert quick < full / 2, (quick, full)
