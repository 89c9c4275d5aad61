"""POST /anthropic/v1/messages with the official Anthropic SDK: any model, translated both ways."""

import asyncio

import anthropic
import httpx
import pytest


def client(gw, key, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=key["sk"], max_retries=0, **kw)


def test_messages_text_usage_and_cost(gateway):
    key = gateway.key()
    message = client(gateway, key).messages.create(
        model="fake-chat", max_tokens=50, system="You are terse.",
        messages=[{"role": "user", "content": "three please [[reply:3]]"}])
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text == " w0 w1 w2"
    assert message.stop_reason == "end_turn"
    # system (3 words + 4) + user (3 words + 4) + 3
    assert (message.usage.input_tokens, message.usage.output_tokens) == (17, 3)
    spent = gateway.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]["spentNanos"]
    assert spent == 17 * 1000 + 3 * 2000


def test_streaming_events_and_tools(gateway):
    key = gateway.key()
    c = client(gateway, key)
    with c.messages.stream(model="fake-chat", max_tokens=20,
                           messages=[{"role": "user", "content": "go [[reply:4]]"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == " w0 w1 w2 w3"
    assert final.usage.output_tokens == 4 and final.stop_reason == "end_turn"

    tools = [{"name": "get_weather", "description": "weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}}}]
    message = c.messages.create(model="fake-chat", max_tokens=50, tools=tools,
                                messages=[{"role": "user", "content": "weather [[tool:get_weather]]"}])
    [use] = [b for b in message.content if b.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"}) and message.stop_reason == "tool_use"
    with c.messages.stream(model="fake-chat", max_tokens=50, tools=tools,
                           messages=[{"role": "user", "content": "weather [[tool:get_weather]]"}]) as stream:
        final = stream.get_final_message()
    [use] = [b for b in final.content if b.type == "tool_use"]
    assert use.input == {"city": "Paris"}

    # A full tool round trip: the tool result goes back in the next user turn.
    follow = c.messages.create(model="fake-chat", max_tokens=50, tools=tools, messages=[
        {"role": "user", "content": "weather [[tool:get_weather]]"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"},
                                     {"type": "text", "text": "thanks [[reply:2]]"}]},
    ])
    assert follow.content[0].text == " w0 w1"


def test_async_client_and_x_api_key_header(gateway):
    key = gateway.key()

    async def main():
        c = anthropic.AsyncAnthropic(base_url=gateway.url + "/anthropic", api_key=key["sk"], max_retries=0)
        message = await c.messages.create(model="fc", max_tokens=5, messages=[{"role": "user", "content": "[[reply:2]]"}])
        await c.close()
        return message

    assert asyncio.run(main()).content[0].text == " w0 w1"
    r = httpx.post(gateway.url + "/anthropic/v1/messages", headers={"x-api-key": key["sk"], "anthropic-version": "2023-06-01"},
                   json={"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["type"] == "message"


@pytest.mark.parametrize(
    "body, status",
    [
        ({"model": "fake-chat", "messages": [{"role": "user", "content": "x"}]}, 400),
        ({"model": "fake-chat", "max_tokens": 5, "messages": []}, 400),
        ({"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, 400),
        ({"model": "fake-chat", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400),
        ({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, 404),
    ],
)
def test_errors_come_in_anthropic_shape(gateway, body, status):
    key = gateway.key()
    r = httpx.post(gateway.url + "/anthropic/v1/messages", headers={"x-api-key": key["sk"]}, json=body)
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["type"] == "error" and payload["error"]["type"] and payload["error"]["message"]
    r = httpx.post(gateway.url + "/anthropic/v1/messages", headers={"x-api-key": "sk_wrong"}, json=body)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
