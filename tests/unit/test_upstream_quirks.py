"""What the gateway sends an upstream and how it reads what comes back (docs/upstream-quirks.md)."""

from __future__ import annotations

import pytest

from tollgate.config import ConfigError, load_config
from tollgate.proxy.upstream_answer import error_text, without_secret
from tollgate.proxy.retry_hint import MAX_HINT, retry_after
from tollgate.proxy.sse import EventStream, Reported, usage_from

NOW = 1_764_000_000.0
BLOCK = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def upstream_config(tmp_path, extra: str):
    path = tmp_path / "c.toml"
    path.write_text(f'[[upstreams]]\nname = "u"\nbase_url = "http://x"\n{extra}\n'
                    '[[models]]\nid = "m"\nupstream = "u"\ninput_per_mtok = "1"\noutput_per_mtok = "1"\n')
    return load_config(path, env={}).upstreams[0]


def test_by_default_an_upstream_gets_a_request_id_and_nothing_of_the_client(tmp_path):
    u = upstream_config(tmp_path, "")
    assert (u.request_id_header, u.headers, u.forward_headers, u.usage) == ("X-Request-Id", (), (), "upstream")


def test_headers_and_forwarding_are_read_exactly(tmp_path):
    u = upstream_config(tmp_path, 'request_id_header = "X-Trace"\nforward_headers = ["X-Title", "x-title", "OpenAI-Beta"]\n'
                                  'usage = "gateway"\nheaders = { "X-Vendor-Version" = "2", "X-Empty-Ok" = "a b" }')
    assert u.request_id_header == "X-Trace" and u.usage == "gateway"
    assert u.headers == (("X-Vendor-Version", "2"), ("X-Empty-Ok", "a b"))
    assert u.forward_headers == ("x-title", "openai-beta")
    assert upstream_config(tmp_path, "request_id_header = false").request_id_header == ""


@pytest.mark.parametrize(("extra", "problem"), [
    ('headers = { "Authorization" = "Bearer x" }', "api_key_env"),
    ('headers = { "Content-Length" = "5" }', "writes itself"),
    ('headers = { "Bad Name" = "x" }', "not a valid header name"),
    ('headers = { "X-A" = "line\\r\\nX-Injected: 1" }', "without line breaks"),
    ('headers = { "X-A" = "1", "x-a" = "2" }', "named twice"),
    ('forward_headers = ["Authorization"]', "never forwarded"),
    ('forward_headers = ["Cookie"]', "never forwarded"),
    ('forward_headers = ["x-api-key"]', "never forwarded"),
    ('forward_headers = ["Host"]', "never forwarded"),
    ('request_id_header = "Host"', "writes itself"),
    ('request_id_header = "a:b"', "not a valid header name"),
    ('usage = "sometimes"', "must be one of"),
])
def test_headers_that_could_break_a_request_or_leak_a_key_are_refused_at_start(tmp_path, extra, problem):
    with pytest.raises(ConfigError) as info:
        upstream_config(tmp_path, extra)
    assert problem in str(info.value) and "upstreams[0]" in str(info.value)


@pytest.mark.parametrize(("headers", "wait"), [
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"x-ratelimit-reset-requests": "6m0s"}, 300.0),  # capped at MAX_HINT
    ({"x-ratelimit-reset-requests": "1m30s"}, 90.0),
    ({"x-ratelimit-reset-tokens": "20ms"}, 0.02),
    ({"x-ratelimit-reset-tokens": "1h"}, MAX_HINT),
    ({"retry-after": "Mon, 24 Nov 2025 16:00:10 GMT"}, 10.0),  # an HTTP date, NOW + 10 s
    ({"retry-after": "Mon, 24 Nov 2025 15:00:00 GMT"}, 0.0),  # in the past: now
    ({"retry-after": "-4"}, 0.0),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "9" * 100}, None),
    ({}, None),
])
def test_a_rate_limited_upstreams_wait_is_read_from_whichever_header_it_uses(headers, wait):
    assert retry_after(headers, now=NOW) == wait


@pytest.mark.parametrize("event", [
    {"choices": [], "usage": BLOCK},  # OpenAI: a last chunk with no choices
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": BLOCK},  # llama-server
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "x_groq": {"id": "x", "usage": BLOCK}},  # Groq
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "usage": BLOCK}]},  # Moonshot
])
def test_usage_is_found_wherever_a_provider_puts_it(event):
    assert usage_from(event) == Reported(9, 4, None)


def test_a_running_usage_in_every_chunk_ends_as_the_last_one():
    import orjson

    stream = EventStream()
    for n in range(1, 4):
        stream.feed(b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": "x"}}],
                                               "usage": {**BLOCK, "completion_tokens": n}}) + b"\n\n")
    stream.feed(b": keep-alive\n\ndata: [DONE]\n\n")
    assert stream.done and stream.usage == Reported(9, 3, None)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"error": {"message": "bad temperature", "code": "invalid"}}', ("bad temperature", "invalid")),
    (b'{"error": "plain text error"}', ("plain text error", "upstream_error")),
    (b'{"object": "error", "message": "max_tokens is too large", "code": 400}', ("max_tokens is too large", "upstream_error")),
    (b'{"detail": "Not Found"}', ("Not Found", "upstream_error")),
    (b'{"detail": [{"msg": "must be at most 2"}]}', ('[{"msg":"must be at most 2"}]', "upstream_error")),
    (b"<html>502 Bad Gateway</html>", ("<html>502 Bad Gateway</html>", "upstream_error")),
    (b"", ("upstream error", "upstream_error")),
])
def test_an_error_body_of_any_shape_gives_a_message(body, message):
    assert error_text(body) == message


def test_the_upstreams_key_is_taken_out_of_its_error_messages(tmp_path):
    from tollgate.proxy.upstream.http import HTTPUpstream

    key = "vendor-key-0123456789abcdefghij"
    upstream = HTTPUpstream(upstream_config(tmp_path, ""), key)
    assert upstream.secret == key and HTTPUpstream(upstream_config(tmp_path, ""), None).secret is None
    quoted = f"Incorrect API key provided: Bearer {key}; again: {key}."
    assert without_secret(quoted, key) == "Incorrect API key provided: Bearer [redacted]; again: [redacted]."
    assert without_secret(quoted, None) == quoted and without_secret(quoted, "") == quoted
