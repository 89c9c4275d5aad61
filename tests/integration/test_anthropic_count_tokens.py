"""POST /anthropic/v1/messages/count_tokens: the model's own count where it has a tokenizer, else the
gateway's bound, and which one it is; the key's auth and Anthropic's error shape; never a charge.

The exact case (the bundled model) is in test_local_default.py."""

import httpx
import pytest

from tests.conftest import fake_config, minilm_tokenizer
from tollgate.http.anthropic_translate import prompt_of
from tollgate.proxy.estimate import chat_prompt_bound

PATH = "/anthropic/v1/messages/count_tokens"
BODY = {"model": "fake-chat", "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"},
                     {"role": "system", "content": "Folded into the system prompt."}],
        "tools": [{"name": "Bash", "description": "Runs a command.",
                   "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}


@pytest.fixture
def counting(gateway_factory, fake_upstream):
    config = fake_config(fake_upstream.url)
    config["models"].append({"id": "tok-chat", "upstream": "fake", "input_per_mtok": "1.00", "output_per_mtok": "2.00",
                             "tokenizer": minilm_tokenizer()})
    config["routes"] = {"auto": {c: ["tok-chat"] for c in ("simple", "general", "reasoning", "code", "agent")}}
    return gateway_factory(config)


def count(gw, key: dict | str, body: dict, **headers) -> httpx.Response:
    secret = key if isinstance(key, str) else key["sk"]
    return httpx.post(gw.url + PATH + "?beta=true", json=body, timeout=30,
                      headers={"x-api-key": secret, "anthropic-version": "2023-06-01", **headers})


def test_without_a_tokenizer_the_bound_and_no_charge(counting):
    key = counting.key()
    r = count(counting, key, BODY)
    assert r.status_code == 200, r.text
    assert r.json() == {"input_tokens": chat_prompt_bound(prompt_of(BODY), None), "exact": False}
    # The bound is never below what the upstream then bills for the same prompt.
    sent = httpx.post(counting.url + "/anthropic/v1/messages", headers={"x-api-key": key["sk"]}, timeout=30,
                      json={**BODY, "max_tokens": 5, "messages": [BODY["messages"][0]]}).json()
    assert r.json()["input_tokens"] >= sent["usage"]["input_tokens"]
    usage = counting.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    assert usage["requests"] == 1  # the message only: counting is free and leaves no record


def test_with_a_tokenizer_file_a_tighter_bound_and_auto_routes(counting):
    key = counting.key()
    by_file = count(counting, key, {**BODY, "model": "tok-chat"}).json()
    by_auto = count(counting, key, {**BODY, "model": "auto"}).json()
    assert by_file == by_auto and by_file["exact"] is False
    assert 0 < by_file["input_tokens"] < chat_prompt_bound(prompt_of(BODY), None)
    assert count(counting, key, {**BODY, "model": "auto"}, authorization=f"Bearer {key['sk']}").status_code == 200
    # A count is not a routed request: the route metrics do not see it.
    assert "tollgate_route_classified_total{" not in counting.admin("GET", "/metrics").text
    sent = httpx.post(counting.url + "/anthropic/v1/messages", headers={"x-api-key": key["sk"]}, timeout=30,
                      json={"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert sent.status_code == 200 and sent.json()["model"] == "tok-chat"
    assert "tollgate_route_classified_total{" in counting.admin("GET", "/metrics").text  # a request is seen


@pytest.mark.parametrize("body, status, kind", [
    ({"model": "fake-chat"}, 400, "invalid_request_error"),
    ({"model": "fake-chat", "messages": []}, 400, "invalid_request_error"),
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "invalid_request_error"),
    ({"model": "fake-chat", "messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400, "invalid_request_error"),
    ({"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "tools": "Bash"}, 400, "invalid_request_error"),
    ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "not_found_error"),
    ({"model": "fake-embed", "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_request_error"),
])
def test_errors_in_anthropic_shape(counting, body, status, kind):
    key = counting.key()
    r = count(counting, key, body)
    assert r.status_code == status, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == kind and r.json()["error"]["message"]
    r = count(counting, "sk_wrong", {**BODY})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = httpx.post(counting.url + PATH, content=b"{not json", headers={"x-api-key": key["sk"]}, timeout=30)
    assert r.status_code == 400 and r.json()["type"] == "error"
