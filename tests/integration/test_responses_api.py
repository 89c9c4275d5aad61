"""The OpenAI Responses API (POST /v1/responses), driven by the official SDK, onto the chat-completions flow."""

import json
import time

import httpx
import openai
import pytest

# fake-chat costs $1.00 / $2.00 per million tokens: 1000 and 2000 nano-dollars per token.
IN, OUT = 1000, 2000

pytestmark = pytest.mark.timeout(120)


def client(gw, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key["sk"], max_retries=0)


def spent(gw, key, requests: int = 0) -> dict:
    """The key's spend total, once it counts `requests` requests (records land a few ms after the answer)."""
    deadline = time.monotonic() + 5
    while True:
        total = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
        if total["requests"] >= requests or time.monotonic() > deadline:
            return total
        time.sleep(0.05)


def test_text_answer_usage_cost_and_headers(gateway):
    key = gateway.key()
    raw = client(gateway, key).responses.with_raw_response.create(
        model="fc", input="say five words [[reply:5]]", instructions="be brief", max_output_tokens=100)
    answer = raw.parse()
    assert answer.output_text == " w0 w1 w2 w3 w4"
    assert answer.model == "fake-chat"  # the model that answered, not the alias asked for
    assert answer.status == "completed" and answer.object == "response" and answer.id.startswith("resp_")
    # system "be brief" (2 words + 4) + user (4 words + 4) + 3 = 17 prompt tokens, 5 output tokens
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.total_tokens) == (17, 5, 22)
    cost = 17 * IN + 5 * OUT
    assert answer.usage.model_extra["cost_nanos"] == cost
    assert int(raw.headers["x-request-cost-nanos"]) == cost
    assert raw.headers["x-tollgate-model"] == "fake-chat" and raw.headers["x-budget-limit"] == "0.14"
    total = spent(gateway, key, 1)
    assert total["spentNanos"] == cost and total["requests"] == 1


def test_stream_with_a_tool_call(gateway):
    key = gateway.key()
    tools = [{"type": "function", "name": "weather", "description": "the weather",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
             {"type": "web_search"}]  # OpenAI's hosted tool: left out, not refused
    events = list(client(gateway, key).responses.create(
        model="fake-chat", input=[{"role": "user", "content": [{"type": "input_text", "text": "go [[tool:weather]]"}]}],
        tools=tools, tool_choice="auto", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_item.added" in kinds and "response.function_call_arguments.delta" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [(i.type, i.name, json.loads(i.arguments)) for i in done] == [("function_call", "weather", {"city": "Paris"})]
    final = events[-1].response
    assert final.output[0].call_id == done[0].call_id and final.model == "fake-chat"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    cost = final.usage.input_tokens * IN + final.usage.output_tokens * OUT
    assert final.usage.model_extra["cost_nanos"] == cost == spent(gateway, key, 1)["spentNanos"]


def test_streamed_text(gateway):
    key = gateway.key()
    events = list(client(gateway, key).responses.create(model="fake-chat", input="hi [[reply:3]]", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == " w0 w1 w2"
    texts = [e.text for e in events if e.type == "response.output_text.done"]
    assert texts == [" w0 w1 w2"] and events[-1].response.output_text == " w0 w1 w2"
    assert events[-1].response.usage.output_tokens == 3


def test_items_become_the_chat_conversation(gateway):
    """function_call and function_call_output items reach the upstream as an assistant tool call and its result."""
    key = gateway.key()
    items = [
        {"type": "message", "role": "developer", "content": "rules"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather? [[echo]]"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is cold."}]},
    ]
    answer = client(gateway, key).responses.create(model="fake-chat", input=items, instructions="sys",
                                                   max_output_tokens=50)
    sent = json.loads(answer.output_text)
    assert sent["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "weather? [[echo]]"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "cold"},
        {"role": "assistant", "content": "It is cold."},
    ]
    assert sent["max_tokens"] == 50 and sent["model"] == "fake-upstream-chat"


def spend(gw, key, stream: bool = False) -> httpx.Response:
    """Requests until the budget answers 429 (bounded)."""
    for _ in range(50):
        r = httpx.post(gw.url + "/v1/responses", headers={"Authorization": f"Bearer {key['sk']}"}, timeout=30,
                       json={"model": "fake-chat", "input": "spend [[reply:400]]", "stream": stream})
        if r.status_code == 429:
            return r
        assert r.status_code == 200, r.text
    raise AssertionError("the budget never ran out")


def test_spent_budget_answers_the_429_contract_worded_for_agents(gateway):
    key = gateway.key(plan="tiny")
    r = spend(gateway, key)
    error = r.json()["error"]
    assert error["code"] == "budget_exceeded" and error["param"] is None
    assert error["message"].startswith("budget exceeded: usage limit reached for this 5h window; resets at ")
    assert error["message"].endswith(error["reset_at"])
    assert error["type"] == "usage_limit_reached"  # what makes Codex CLI stop instead of sleeping Retry-After
    assert isinstance(error["resets_at"], int)
    assert int(r.headers["retry-after"]) > 0 and r.headers["x-should-retry"] == "false"
    assert r.headers["x-codex-promo-message"] == error["message"]
    # a streamed request is refused the same way, before any event
    again = spend(gateway, key, stream=True)
    assert again.json()["error"]["code"] == "budget_exceeded"
    assert again.headers["content-type"].startswith("application/json")
    with pytest.raises(openai.RateLimitError) as caught:
        client(gateway, key).responses.create(model="fake-chat", input="spend [[reply:400]]")
    assert "usage limit reached" in str(caught.value)


@pytest.mark.parametrize("body, param", [
    ({"model": "fake-chat", "input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"model": "fake-chat"}, "input"),
    ({"model": "fake-chat", "input": []}, "input"),
    ({"model": "fake-chat", "input": 5}, "input"),
    ({"input": "hi"}, "model"),
    ({"model": "fake-chat", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"model": "fake-chat", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"model": "fake-chat", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"model": "fake-chat", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "fake-chat", "input": "hi", "stream": "yes"}, "stream"),
    ({"model": "fake-chat", "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "fake-chat", "input": "hi", "tools": [{"type": "function", "name": "f"}], "tool_choice": 3},
     "tool_choice"),
    ({"model": "fake-chat", "input": [{"role": "user", "content": [{"type": "input_file"}]}]}, "input[0].content[0]"),
])
def test_malformed_requests_are_400_in_openai_shape(gateway, body, param):
    key = gateway.key()
    r = httpx.post(gateway.url + "/v1/responses", json=body, headers={"Authorization": f"Bearer {key['sk']}"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    assert spent(gateway, key)["requests"] == 0


def test_unknown_key_is_401_in_openai_shape(gateway):
    r = httpx.post(gateway.url + "/v1/responses", json={"model": "fake-chat", "input": "hi"},
                   headers={"Authorization": "Bearer sk_nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
