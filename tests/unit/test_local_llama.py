"""LlamaUpstream with the real bundled SmolLM2 (llama.cpp, in-process)."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest

from tests.unit.llama_support import STORY, chat, post, started_upstream
from tollgate.config import UpstreamConfig
from tollgate.proxy.upstream.local.files import bundled_gguf
from tollgate.proxy.upstream.local.llama import LlamaUpstream
from tollgate.proxy.upstream.local.llama_prompt import LlamaTokenCounter

pytestmark = pytest.mark.local_model

@pytest.fixture(scope="module")
def upstream():
    up = started_upstream()
    yield up
    asyncio.run(up.close())


def events(raw: bytes) -> list:
    """SSE bytes -> payloads; "[DONE]" stays a string."""
    assert raw.endswith(b"\n\n")
    out = []
    for block in raw.decode().split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block[len("data: "):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


# --- non-streamed ----------------------------------------------------------
def test_chat_completion_shape_and_usage(upstream):
    status, raw, headers = asyncio.run(post(upstream, "/chat/completions", chat(12)))
    assert status == 200 and headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "smollm2"
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    usage = body["usage"]
    assert 1 <= usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert choice["finish_reason"] == ("length" if usage["completion_tokens"] == 12 else "stop")


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("limit", [1, 7, 30])
def test_max_tokens_is_honoured(upstream, field, limit):
    body = orjson.dumps({"model": "m", "messages": STORY, field: limit, "temperature": 0})
    status, raw, _ = asyncio.run(post(upstream, "/chat/completions", body))
    out = json.loads(raw)
    assert status == 200
    assert out["usage"]["completion_tokens"] <= limit
    # The story prompt goes on far longer than 30 tokens.
    assert out["usage"]["completion_tokens"] == limit
    assert out["choices"][0]["finish_reason"] == "length"


MESSAGE_SETS = [
    STORY,
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": [{"type": "text", "text": "Tell me "},
                                  {"type": "text", "text": "a joke. ünïcødé 🐉"}]}],
    [{"role": "developer", "content": "Answer in French."},
     {"role": "user", "content": "<|im_start|> special-looking text"}],
]


@pytest.mark.parametrize("messages", MESSAGE_SETS)
def test_count_chat_equals_reported_prompt_tokens(upstream, messages):
    counted = upstream.token_counter.count_chat(messages)
    status, raw, _ = asyncio.run(post(upstream, "/chat/completions", chat(1, messages)))
    assert status == 200
    assert json.loads(raw)["usage"]["prompt_tokens"] == counted
    assert counted > 10  # the template's role markers are counted too


def test_count_chat_ignores_tools_like_the_template_does(upstream):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    counter = upstream.token_counter
    assert not upstream.token_counter._builder.template_uses_tools
    assert counter.count_chat(STORY, tools) == counter.count_chat(STORY)
    status, raw, _ = asyncio.run(post(upstream, "/chat/completions", chat(1, tools=tools)))
    assert status == 200
    assert json.loads(raw)["usage"]["prompt_tokens"] == counter.count_chat(STORY, tools)


def test_vocab_only_counter_matches_the_loaded_model(upstream):
    standalone = LlamaTokenCounter.load(bundled_gguf())
    for messages in MESSAGE_SETS:
        assert standalone.count_chat(messages) == upstream.token_counter.count_chat(messages)
    text = "The quick brown fox, ünïcødé 🐉."
    assert standalone.count_text(text) == upstream.token_counter.count_text(text) > 5


def test_completions_endpoint_with_stop_and_count_text(upstream):
    prompt = "1, 2, 3, 4, 5, 6, 7, 8,"
    body = orjson.dumps({"model": "m", "prompt": prompt, "max_tokens": 20, "temperature": 0,
                         "stop": [" 11"]})
    status, raw, _ = asyncio.run(post(upstream, "/completions", body))
    out = json.loads(raw)
    assert status == 200 and out["object"] == "text_completion"
    text = out["choices"][0]["text"]
    assert " 9" in text and "11" not in text
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["prompt_tokens"] == upstream.token_counter.count_text(prompt)


def test_completions_echo_and_token_prompt(upstream):
    counter = upstream.token_counter
    prompt = "Once upon a time"
    ids = upstream._builder.text_tokens(prompt)
    as_text = orjson.dumps({"model": "m", "prompt": prompt, "max_tokens": 5, "temperature": 0,
                            "echo": True})
    as_ids = orjson.dumps({"model": "m", "prompt": [ids], "max_tokens": 5, "temperature": 0})
    (_, raw_text, _), (_, raw_ids, _) = asyncio.run(
        _both(upstream, ("/completions", as_text), ("/completions", as_ids)))
    text, from_ids = json.loads(raw_text), json.loads(raw_ids)
    assert text["choices"][0]["text"] == prompt + from_ids["choices"][0]["text"]
    assert text["usage"] == from_ids["usage"]
    assert text["usage"]["prompt_tokens"] == counter.count_text(prompt) == len(ids)


async def _both(up, *requests):
    return [await post(up, path, body) for path, body in requests]


def test_seed_makes_sampling_reproducible(upstream):
    body = chat(24, temperature=1.2, seed=1234)
    other = chat(24, temperature=1.2, seed=99)
    results = asyncio.run(_both(upstream, ("/chat/completions", body),
                                ("/chat/completions", body), ("/chat/completions", other)))
    texts = [json.loads(raw)["choices"][0]["message"]["content"] for _, raw, _ in results]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_json_object_response_format_constrains_output(upstream):
    body = chat(30, messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
                response_format={"type": "json_object"})
    status, raw, _ = asyncio.run(post(upstream, "/chat/completions", body))
    content = json.loads(raw)["choices"][0]["message"]["content"]
    assert status == 200 and content.lstrip().startswith("{")
    if json.loads(raw)["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(content), dict)


def test_json_schema_response_format_is_followed(upstream):
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}
    body = chat(40, messages=[{"role": "user", "content": "Describe a person as JSON."}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "person", "schema": schema}})
    status, raw, _ = asyncio.run(post(upstream, "/chat/completions", body))
    out = json.loads(raw)
    assert status == 200 and out["choices"][0]["finish_reason"] == "stop"
    person = json.loads(out["choices"][0]["message"]["content"])
    assert isinstance(person["name"], str) and isinstance(person["age"], int)


# --- streamed --------------------------------------------------------------
def test_stream_shape_matches_openai_and_the_non_streamed_answer(upstream):
    async def main():
        plain = json.loads((await post(upstream, "/chat/completions", chat(20)))[1])
        response = await upstream.send("/chat/completions", chat(20, stream=True))
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = [c async for c in response.chunks()]
        return plain, chunks

    plain, chunks = asyncio.run(main())
    payloads = events(b"".join(chunks))
    assert payloads[-1] == "[DONE]"
    body = payloads[:-1]
    assert all(p["object"] == "chat.completion.chunk" and "usage" not in p for p in body)
    assert len({p["id"] for p in body}) == 1
    assert body[0]["choices"][0]["delta"]["role"] == "assistant"
    assert body[-1]["choices"][0]["delta"] == {}
    assert body[-1]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]
    assert all(p["choices"][0]["finish_reason"] is None for p in body[:-1])
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in body)
    assert text == plain["choices"][0]["message"]["content"]
    # One event per token (multi-byte characters may merge two).
    assert len(body) - 2 <= plain["usage"]["completion_tokens"]


def test_stream_usage_chunk_only_when_asked(upstream):
    async def main():
        response = await upstream.send(
            "/chat/completions", chat(9, stream=True, stream_options={"include_usage": True}))
        return await response.read()

    payloads = events(asyncio.run(main()))
    assert payloads[-1] == "[DONE]"
    usage_chunk = payloads[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 9
    assert usage_chunk["usage"]["prompt_tokens"] == upstream.token_counter.count_chat(STORY)
    assert all(p["usage"] is None for p in payloads[:-2])


def test_completions_stream(upstream):
    async def main():
        body = orjson.dumps({"model": "m", "prompt": "The sky is", "max_tokens": 6,
                             "temperature": 0, "stream": True,
                             "stream_options": {"include_usage": True}})
        response = await upstream.send("/completions", body)
        return await response.read()

    payloads = events(asyncio.run(main()))
    assert payloads[-1] == "[DONE]"
    assert all(p["object"] == "text_completion" for p in payloads[:-1])
    assert payloads[-2]["usage"]["completion_tokens"] <= 6
    assert payloads[-3]["choices"][0]["finish_reason"] in ("stop", "length")


def test_aclose_mid_stream_stops_generation(upstream):
    async def main():
        before = upstream.stats.generated
        response = await upstream.send("/chat/completions", chat(400, stream=True))
        chunks = response.chunks()
        for _ in range(5):
            await chunks.__anext__()
        at_close = upstream.stats.generated
        await response.aclose()
        after_close = upstream.stats.generated
        idle = not upstream.busy
        # Give a runaway generation every chance to show itself.
        for _ in range(50):
            await asyncio.sleep(0.01)
        assert upstream.inflight == 0
        # The model is free: a new request is served, not queued behind 400 tokens.
        status, raw, _ = await post(upstream, "/chat/completions", chat(3))
        return before, at_close, after_close, idle, upstream.stats.generated, json.loads(raw)

    before, at_close, after_close, idle, final, last = asyncio.run(main())
    assert idle
    assert after_close - at_close <= 1  # at most the token in flight
    assert final == after_close + last["usage"]["completion_tokens"]
    assert after_close - before < 100  # far from the 400 asked for


def test_cancelling_a_non_streamed_send_stops_generation(upstream):
    async def main():
        before = upstream.stats.generated
        task = asyncio.create_task(upstream.send("/chat/completions", chat(400)))
        while upstream.stats.generated - before < 3:  # generation is under way
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The worker notices at its next token; wait for it through the loop.
        for _ in range(1000):
            if not upstream.busy and upstream.inflight == 0:
                break
            await asyncio.sleep(0.005)
        stopped_at = upstream.stats.generated
        status, raw, _ = await post(upstream, "/chat/completions", chat(2))
        return before, stopped_at, upstream.stats.generated, json.loads(raw)

    before, stopped_at, final, last = asyncio.run(main())
    assert stopped_at - before < 100  # far from the 400 asked for
    assert final - stopped_at == last["usage"]["completion_tokens"]  # nothing ran on


def test_concurrent_requests_all_complete(upstream):
    async def one(i: int):
        stream = i % 2 == 0
        body = chat(8, messages=[{"role": "user", "content": f"Count to {i + 3}."}],
                    stream=stream, stream_options={"include_usage": True} if stream else None)
        response = await upstream.send("/chat/completions", body)
        raw = await response.read()
        usage = events(raw)[-2]["usage"] if stream else json.loads(raw)["usage"]
        return response.status, usage

    async def main():
        return await asyncio.gather(*(one(i) for i in range(6)))

    results = asyncio.run(main())
    assert [status for status, _ in results] == [200] * 6
    assert all(1 <= usage["completion_tokens"] <= 8 for _, usage in results)
    assert upstream.inflight == 0


def test_event_loop_keeps_running_during_generation(upstream):
    async def main():
        busy_ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal busy_ticks
            while not done.is_set():
                busy_ticks += upstream.busy  # the worker is generating right now
                await asyncio.sleep(0.002)

        task = asyncio.create_task(ticker())
        status, raw, _ = await post(upstream, "/chat/completions", chat(64))
        done.set()
        await task
        return busy_ticks, json.loads(raw)["usage"]["completion_tokens"]

    busy_ticks, tokens = asyncio.run(main())
    assert tokens == 64
    # A blocked loop could not tick while the worker generates; a free one
    # ticks every few ms of a 64-token generation.
    assert busy_ticks >= 5
