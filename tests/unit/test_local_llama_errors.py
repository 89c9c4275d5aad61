"""LlamaUpstream's refusals and limits: OpenAI-shaped 4xx bodies, context clamping, lifecycle."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest

from tests.unit.llama_support import STORY, chat, post, started_upstream
from tollgate.config import UpstreamConfig
from tollgate.proxy.upstream.base import UpstreamError
from tollgate.proxy.upstream.local.llama import LlamaUpstream

pytestmark = pytest.mark.local_model

@pytest.fixture(scope="module")
def upstream():
    up = started_upstream()
    yield up
    asyncio.run(up.close())


BAD_CHAT = [
    (b"{not json", None),
    (b"[1, 2]", None),
    (orjson.dumps({"messages": STORY}), "model"),
    (orjson.dumps({"model": "m"}), "messages"),
    (orjson.dumps({"model": "m", "messages": []}), "messages"),
    (orjson.dumps({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
     "messages[0].role"),
    (chat(n=2), "n"),
    (chat(temperature=3), "temperature"),
    (chat(top_p="high"), "top_p"),
    (chat(max_tokens=0), "max_tokens"),
    (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    (chat(stream_options={"include_usage": True}), "stream_options"),
    (chat(logprobs=True), "logprobs"),
    (chat(response_format={"type": "xml"}), "response_format"),
    (chat(response_format={"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"properties": {"x": {"$ref": "#/nowhere"}}}}}), "response_format"),
    (chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]),
     "messages[0].content[0]"),
]


@pytest.mark.parametrize(("body", "param"), BAD_CHAT)
def test_bad_chat_bodies_get_openai_400s(upstream, body, param):
    status, raw, headers = asyncio.run(post(upstream, "/chat/completions", body))
    assert status == 400 and headers["content-type"] == "application/json"
    error = json.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param


def test_bad_completion_bodies(upstream):
    cases = [
        ({"model": "m", "prompt": ["a", "b"]}, "prompt"),
        ({"model": "m", "prompt": 5}, "prompt"),
        ({"model": "m", "prompt": [10**9]}, "prompt"),
        ({"model": "m", "prompt": "x", "suffix": "y"}, "suffix"),
    ]
    for body, param in cases:
        status, raw, _ = asyncio.run(post(upstream, "/completions", orjson.dumps(body)))
        assert status == 400, body
        assert json.loads(raw)["error"]["param"] == param


@pytest.fixture(scope="module")
def small():
    """A second instance with a 96-token context."""
    up = LlamaUpstream(UpstreamConfig(name="small", kind="llama_cpp", context=96))
    asyncio.run(up.start())
    yield up
    asyncio.run(up.close())


def test_prompt_longer_than_context_is_refused(small):
    long = [{"role": "user", "content": "word " * 80}]
    assert small.token_counter.count_chat(long) > small.context
    status, raw, _ = asyncio.run(post(small, "/chat/completions", chat(5, long)))
    assert status == 400
    assert json.loads(raw)["error"]["code"] == "context_length_exceeded"


def test_max_tokens_beyond_context_is_clamped(small):
    status, raw, _ = asyncio.run(post(small, "/chat/completions", chat(10**6)))
    assert status == 200
    out = json.loads(raw)
    usage = out["usage"]
    assert usage["total_tokens"] <= small.context
    if usage["total_tokens"] == small.context:
        assert out["choices"][0]["finish_reason"] == "length"


def test_unknown_path_is_404(upstream):
    status, raw, _ = asyncio.run(post(upstream, "/embeddings", b"{}"))
    assert status == 404 and json.loads(raw)["error"]["code"] == "unknown_url"


def test_send_before_start_raises_upstream_error():
    up = LlamaUpstream(UpstreamConfig(name="cold", kind="llama_cpp"))
    with pytest.raises(UpstreamError) as info:
        asyncio.run(up.send("/chat/completions", chat()))
    assert info.value.kind == "connect"


def test_closed_upstream_refuses_but_its_counter_keeps_working():
    up = LlamaUpstream(UpstreamConfig(name="short-lived", kind="llama_cpp", context=256))
    asyncio.run(up.start())
    counter = up.token_counter
    before = counter.count_chat(STORY)
    asyncio.run(up.close())
    with pytest.raises(UpstreamError):
        asyncio.run(up.send("/chat/completions", chat()))
    assert counter.count_chat(STORY) == before > 0
