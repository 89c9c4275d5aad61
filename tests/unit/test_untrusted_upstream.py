"""What an upstream says is checked before it is billed, relayed or stored.

Usage numbers are held to what the request could have produced (proxy/plausible.py);
odd answer shapes never raise in the stream sorter or the Anthropic translation;
a stream with no event boundary is cut at a bound; the HTTP client bounds an
answer's size and never writes a request twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.config.schema import UpstreamConfig
from tollgate.domain import usage as basis
from tollgate.http.anthropic_translate import StreamTranslator, from_openai
from tollgate.proxy import plausible
from tollgate.proxy.sse import MAX_EVENT_BYTES, EventStream, Reported, Usage, usage_from
from tollgate.proxy.upstream.base import UpstreamError
from tollgate.proxy.upstream.http import HTTPUpstream

BOUND = 10.0  # seconds: the most any single wait here may take before the test fails

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["choices", "delta", "message", "content", "tool_calls", "function", "name", "arguments", "index", "id",
         "finish_reason", "usage", "prompt_tokens", "completion_tokens", "text"]), inner, max_size=5),
    max_leaves=20,
)


def believable(value: object, ceiling: int) -> bool:
    if type(value) is float and value.is_integer():
        value = int(value)
    return type(value) is int and 0 <= value <= ceiling


# -- usage -------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(json_values, json_values, json_values, st.integers(0, 10**6), st.integers(0, 10**5), st.integers(1, 10**6))
def test_every_reported_usage_becomes_counts_within_the_ceiling(prompt, completion, cached, bound, output, context):
    limits = plausible.limits(bound, output, context)
    usage = plausible.from_upstream(Reported(prompt, completion, cached), limits)
    assert type(usage.prompt_tokens) is int and type(usage.completion_tokens) is int
    assert 0 <= usage.prompt_tokens <= limits.ceiling and 0 <= usage.completion_tokens <= limits.ceiling
    assert usage.cached_tokens is None or 0 <= usage.cached_tokens <= usage.prompt_tokens
    good = believable(prompt, limits.ceiling) and believable(completion, limits.ceiling)
    assert (usage.doubt is None) == good and usage.estimated == (not good)
    if good:
        assert (usage.prompt_tokens, usage.completion_tokens) == (int(prompt), int(completion))  # type: ignore[arg-type]
    else:
        assert "upstream usage not believed" in usage.doubt
        if not believable(prompt, limits.ceiling):
            assert usage.prompt_tokens == bound  # the gateway's own bound stands in
        if not believable(completion, limits.ceiling):
            assert usage.completion_tokens == output


def test_the_absurd_numbers_of_the_issue_are_replaced_and_flagged():
    limits = plausible.limits(prompt_bound=120, output_allowed=64, context=8192)
    for prompt in (2**63, 10**30, 1e30, -5, 3.5, "12", True, None, float("inf"), 8192 + 64 + 1):
        usage = plausible.from_upstream(Reported(prompt, 10), limits)
        assert (usage.prompt_tokens, usage.completion_tokens, usage.estimated) == (120, 10, True), prompt
    usage = plausible.from_upstream(Reported(8000, 12.0, 2**63), limits)  # within the ceiling: as given
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.doubt) == (8000, 12, None, None)


def test_the_gateways_own_count_is_held_to_the_same_ceiling():
    limits = plausible.limits(prompt_bound=50, output_allowed=16, context=100)
    counted = Usage(40, 10_000_000, basis.COUNTED)  # a stream of garbage, counted by its pieces
    held = plausible.within(counted, limits)
    assert (held.prompt_tokens, held.completion_tokens, held.basis) == (40, 16, basis.BOUND)
    assert held.doubt.startswith("the gateway's own count not believed")
    fine = Usage(40, 10, basis.COUNTED)
    assert plausible.within(fine, limits) is fine


def test_a_usage_block_is_only_the_upstreams_word_until_checked():
    assert usage_from({"usage": None}) is None
    assert usage_from({"usage": {"completion_tokens": 3}}) is None  # no prompt count: not reported
    assert usage_from({"usage": {"prompt_tokens": "x"}}) == Reported("x", 0, None)


# -- odd answer shapes --------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=6))
def test_the_anthropic_translation_takes_any_chunk_and_any_answer(objects):
    translator = StreamTranslator("m")
    out = [translator.start()]
    for obj in objects:
        if isinstance(obj, dict):
            out += translator.chunk(obj)
            answer = from_openai(obj, "m")
            orjson.dumps(answer)
            assert answer["type"] == "message" and isinstance(answer["content"], list)
    out += translator.end(3, 4)
    assert all(isinstance(event, bytes) for event in out)
    assert out[-1].startswith(b"event: message_stop")


def test_a_null_choice_and_odd_tool_calls_translate_to_nothing_instead_of_raising():
    translator = StreamTranslator("m")
    assert translator.chunk({"choices": [None]}) == []
    assert translator.chunk({"choices": "x"}) == [] and translator.chunk({"choices": 5}) == []
    assert translator.chunk({"choices": [{"delta": {"tool_calls": "call", "content": 5}}]}) == []
    events = translator.chunk({"choices": [{"delta": {"tool_calls": [None, {"index": "a", "id": 7,
                                                                            "function": {"name": 8}}]}}]})
    assert b'"tool_use"' in b"".join(events) and b'"name":""' in b"".join(events)
    answer = from_openai({"choices": [{"message": {"tool_calls": [None, 3, {"function": {"arguments": 9}}]},
                                       "finish_reason": 7}], "usage": "lots"}, "m")
    assert answer["content"][0]["input"] == {"value": 9} and answer["stop_reason"] == "end_turn"
    assert answer["usage"] == {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                               "output_tokens": 0}
    # cache parts are held to settlement's checks: not whole, negative, or more than the prompt: not shown
    for cached, written in (("5", 1.5), (-1, None), (8, 3)):
        odd = from_openai({"usage": {"prompt_tokens": 10, "completion_tokens": 1, "cache_read_input_tokens": cached,
                                     "cache_creation_input_tokens": written}}, "m")["usage"]
        assert (odd["cache_read_input_tokens"], odd["cache_creation_input_tokens"]) == (0, 0), (cached, written)


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, max_size=6))
def test_the_stream_sorter_takes_any_events(objects):
    events = EventStream()
    for obj in objects:
        events.feed(b"data: " + json.dumps(obj).encode() + b"\n\n")  # (big numbers, NaN: what a server may send)
    assert isinstance(events.text(), str) and events.pieces >= 0


def test_bytes_with_no_event_boundary_end_the_stream_at_a_bound():
    events = EventStream()
    piece = b"data: " + b"z" * (1 << 16)
    fed = 0
    while events.error is None and fed <= MAX_EVENT_BYTES + 2 * len(piece):  # bounded loop
        assert events.feed(piece) == []
        fed += len(piece)
    assert events.error is not None and "without ending an event" in events.error
    assert events.feed(b"data: {}\n\n") == []  # nothing more is taken
    ok = EventStream()  # a boundary split across reads, CRLF style, is still found
    assert ok.feed(b"data: 1\r\n") == [] and ok.feed(b"\r") == [] and ok.feed(b"\ndata: 2") == [b"data: 1\n\n"]


# -- the HTTP client ------------------------------------------------------------------

class Scripted:
    """A raw HTTP/1.1 server: answers each request with the next scripted action, counting what it read."""

    def __init__(self, actions: list[str]) -> None:
        self.actions = actions
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                self.requests += 1
                action = self.actions.pop(0) if self.actions else "ok"
                if action == "close-without-answer":
                    return
                body = b"x" * 5000 if action == "big" else b'{"ok": true}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                if action == "ok-then-close":
                    await writer.drain()
                    return
                if action == "ok-then-garbage":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def scripted(actions: list[str]) -> AsyncIterator[tuple[Scripted, HTTPUpstream]]:
    server = Scripted(actions)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = srv.sockets[0].getsockname()[1]
    upstream = HTTPUpstream(UpstreamConfig(name="s", base_url=f"http://127.0.0.1:{server.port}/v1",
                                           max_response_bytes=4096, first_byte_timeout=BOUND, timeout=BOUND))
    await upstream.start()
    try:
        yield server, upstream
    finally:
        await upstream.close()
        srv.close()


async def post(upstream: HTTPUpstream) -> bytes:
    response = await upstream.send("/x", b"{}")
    return await response.read()


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 4 * BOUND))


def test_an_answer_past_max_response_bytes_fails_as_a_protocol_error():
    async def scenario():
        async with scripted(["big", "ok"]) as (server, upstream):
            with pytest.raises(UpstreamError) as failure:
                await post(upstream)
            assert failure.value.kind == "protocol" and "max_response_bytes" in str(failure.value)
            assert await post(upstream) == b'{"ok": true}'  # the next one is fine
    run(scenario)


def test_a_request_written_to_a_connection_that_then_closes_is_never_sent_again():
    async def scenario():
        async with scripted(["ok", "close-without-answer"]) as (server, upstream):
            assert await post(upstream) == b'{"ok": true}'  # the connection is now kept alive
            with pytest.raises(UpstreamError) as failure:
                await post(upstream)  # written to the kept-alive connection, which closes
            assert failure.value.kind == "closed"
            assert server.requests == 2  # read once: no second try on a fresh connection
    run(scenario)


def test_an_idle_connection_the_server_closed_or_spoke_on_is_not_written_to():
    async def scenario():
        async with scripted(["ok-then-close", "ok-then-garbage", "ok", "ok"]) as (server, upstream):
            for _ in range(4):
                assert await post(upstream) == b'{"ok": true}'
            assert server.requests == 4
    run(scenario)


def test_max_response_bytes_is_read_per_upstream_with_a_sane_default(tmp_path):
    from tollgate.config import ConfigError, load_config

    def upstream(extra: str):
        path = tmp_path / "c.toml"
        path.write_text(f'[[upstreams]]\nname = "u"\nbase_url = "http://127.0.0.1:1/v1"\n{extra}\n'
                        '[[models]]\nid = "m"\nupstream = "u"\ninput_per_mtok = "1"\noutput_per_mtok = "1"\n')
        return load_config(path, env={}).upstreams[0]

    assert upstream("").max_response_bytes == 64 * 1024 * 1024
    assert upstream("max_response_bytes = 2048").max_response_bytes == 2048
    with pytest.raises(ConfigError, match="max_response_bytes"):
        upstream("max_response_bytes = 10")
