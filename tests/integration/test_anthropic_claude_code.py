"""What Claude Code 2.1 sends to POST /anthropic/v1/messages, and what it reads back.

The request below has the shape of Claude Code 2.1.328's first request for a model id it does not
know (`auto`, a gateway's own), as captured against a recording server (`?beta=true`, `system` as text blocks with `cache_control`, a `system` turn
inside `messages`, `thinking`, `context_management`, `output_config`, `metadata.user_id`); the
texts are placeholders. tests/clients/test_claude_code.py runs the real client.
"""

import json

import anthropic
import httpx
import pytest

from tests.conftest import fake_config

CATEGORIES = ("simple", "general", "reasoning", "code", "agent")


def claude_code_body(model: str, last_text: str, stream: bool) -> dict:
    """Claude Code's first request, in shape (placeholder texts, two of its tools)."""
    ephemeral = {"type": "ephemeral"}
    return {
        "model": model,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>context one</system-reminder>"},
                {"type": "text", "text": "<system-reminder>context two</system-reminder>"},
                {"type": "text", "text": last_text},
            ]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment in the turns",
                                            "cache_control": ephemeral}]},
        ],
        "system": [
            {"type": "text", "text": "billing header line"},
            {"type": "text", "text": "You are an agent.", "cache_control": ephemeral},
            {"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "tools": [
            {"name": "Bash", "description": "Runs a command.", "input_schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "properties": {"command": {"type": "string"}}, "required": ["command"], "additionalProperties": False}},
            {"name": "Read", "description": "Reads a file.", "input_schema": {
                "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
        ],
        "metadata": {"user_id": json.dumps({"device_id": "0" * 64, "account_uuid": "", "session_id": "s-1"})},
        "max_tokens": 32000,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": stream,
    }


HEADERS = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
           "x-app": "cli"}


@pytest.fixture
def routed(gateway_factory, fake_upstream):
    config = fake_config(fake_upstream.url)
    config["models"][0]["aliases"] = ["fc", "claude-sonnet-4-5"]
    config["routes"] = {"auto": {c: ["fake-chat"] for c in CATEGORIES}}
    return gateway_factory(config)


def post(gw, key, body, path="/anthropic/v1/messages?beta=true") -> httpx.Response:
    return httpx.post(gw.url + path, headers={**HEADERS, "x-api-key": key["sk"]}, json=body, timeout=30)


def test_first_request_is_accepted_and_the_system_turn_is_folded_in_order(routed, fake_upstream):
    key = routed.key()
    r = post(routed, key, claude_code_body("claude-sonnet-4-5", "say hi [[reply:3]]", stream=False))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model"] == "fake-chat" and answer["content"][0]["text"] == " w0 w1 w2"
    sent = httpx.get(f"{fake_upstream.url}/_bodies/{r.headers['x-request-id']}").json()
    system, user = sent["messages"]
    assert system == {"role": "system", "content": "billing header line\nYou are an agent.\nLong instructions."
                                                   "\n\n# Environment in the turns"}
    assert user["role"] == "user" and user["content"].endswith("say hi [[reply:3]]")
    assert [t["function"]["name"] for t in sent["tools"]] == ["Bash", "Read"]
    for dropped in ("thinking", "context_management", "output_config", "metadata"):
        assert dropped not in sent
    assert json.loads(sent["user"])["session_id"] == "s-1"


@pytest.mark.parametrize("asked", ["auto", "claude-sonnet-4-5", "fc"])
def test_answers_name_the_model_that_answered(routed, asked):
    key = routed.key()
    r = post(routed, key, claude_code_body(asked, "hi [[reply:2]]", stream=False))
    assert r.status_code == 200 and r.json()["model"] == "fake-chat", r.text
    c = anthropic.Anthropic(base_url=routed.url + "/anthropic", api_key=key["sk"], max_retries=0)
    with c.messages.stream(model=asked, max_tokens=20, messages=[{"role": "user", "content": "go [[reply:2]]"}]) as s:
        final = s.get_final_message()
    assert final.model == "fake-chat" and final.usage.output_tokens == 2


def test_streamed_tool_call_for_claude_code_tools(routed):
    key = routed.key()
    r = post(routed, key, claude_code_body("claude-sonnet-4-5", "run it [[tool:Bash]]", stream=True))
    assert r.status_code == 200, r.text
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[0]["type"] == "message_start" and events[0]["message"]["model"] == "fake-chat"
    [start] = [e for e in events if e["type"] == "content_block_start"]
    assert start["content_block"]["name"] == "Bash"
    assert [e for e in events if e["type"] == "message_delta"][0]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("body", [
    {"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "system", "content": "only a system turn"}]},
    {"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "system", "content": 7},
                                                          {"role": "user", "content": "x"}]},
    {"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
])
def test_bad_system_turns_are_400_in_anthropic_shape(routed, body):
    r = post(routed, routed.key(), body)
    assert r.status_code == 400 and r.json()["type"] == "error", r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
