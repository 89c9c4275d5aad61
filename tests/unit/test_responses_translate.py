"""The Responses API's translation onto chat completions and back (http/responses_translate.py, responses_answer.py)."""

import json

import pytest

from tollgate.http.errors import APIError
from tollgate.http.responses_answer import StreamTranslator, from_chat, usage_object
from tollgate.http.responses_translate import to_chat


def events(blobs: list[bytes]) -> list[dict]:
    out = []
    for blob in blobs:
        for block in blob.decode().split("\n\n"):
            if block.strip():
                kind, data = block.split("\n", 1)
                event = json.loads(data.removeprefix("data: "))
                assert kind == "event: " + event["type"]
                out.append(event)
    return out


def test_parallel_calls_share_one_assistant_turn_and_results_follow():
    chat = to_chat({"model": "m", "input": [
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "g", "arguments": {"x": 1}},
        {"type": "function_call_output", "call_id": "a", "output": [{"type": "input_text", "text": "A"}]},
        {"type": "function_call_output", "call_id": "b", "output": "B"},
    ], "tools": [{"type": "function", "name": "f"}, {"type": "file_search"}], "tool_choice": {"type": "function", "name": "f"}})
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in chat["messages"][1]["tool_calls"]] == ["a", "b"]
    assert chat["messages"][1]["tool_calls"][1]["function"]["arguments"] == '{"x":1}'
    assert chat["messages"][2]["content"] == "A"
    assert [t["function"]["name"] for t in chat["tools"]] == ["f"]  # the hosted tool is left out
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}


def test_json_schema_output_and_limits():
    chat = to_chat({"model": "m", "input": "hi", "max_output_tokens": 7, "stream": True, "store": False,
                    "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}}})
    assert chat["max_tokens"] == 7 and chat["stream"] is True
    assert chat["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}


@pytest.mark.parametrize("body", [
    {"model": "m", "input": "hi", "conversation": "c1"},
    {"model": "m", "input": "hi", "background": True},
    {"model": "m", "input": [{"role": ["user"], "content": "x"}]},
    {"model": "m", "input": [{"role": "user", "content": [{"type": ["input_text"]}]}]},
    {"model": "m", "input": "hi", "text": {"format": {"type": "yaml"}}},
])
def test_what_cannot_be_taken_is_a_400(body):
    with pytest.raises(APIError) as caught:
        to_chat(body)
    assert caught.value.status == 400


def test_a_stream_of_text_then_two_calls_closes_each_item_once_in_order():
    t = StreamTranslator({"model": "m"}, "served")
    out = [t.start()]
    for chunk in (
        {"choices": [{"delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "f", "arguments": "{"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "g", "arguments": ""}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3}},
    ):
        out += t.chunk(chunk)
    out += t.end(usage_object(3, 4, 0, 11000))
    seen = events(out)
    assert [e["sequence_number"] for e in seen] == list(range(len(seen)))
    kinds = [e["type"] for e in seen]
    assert kinds.count("response.output_item.added") == 3 == kinds.count("response.output_item.done")
    # the message closes before the first call opens
    assert kinds.index("response.output_text.done") < kinds.index("response.function_call_arguments.delta")
    done = [e["item"] for e in seen if e["type"] == "response.output_item.done"]
    assert done[0]["content"][0]["text"] == "Hello"
    assert [(i["call_id"], i["name"], i["arguments"]) for i in done[1:]] == [("c0", "f", "{}"), ("c1", "g", "")]
    final = seen[-1]
    assert final["type"] == "response.completed" and final["response"]["model"] == "served"
    assert [i["id"] for i in final["response"]["output"]] == [i["id"] for i in done]
    assert final["response"]["usage"]["total_tokens"] == 7 and final["response"]["usage"]["cost_nanos"] == 11000


def test_a_cut_answer_is_incomplete_and_a_broken_one_failed():
    t = StreamTranslator({"model": "m"}, "served")
    t.start()
    t.chunk({"choices": [{"delta": {"content": "x"}, "finish_reason": "length"}]})
    last = events(t.end(usage_object(1, 1, 0, 0)))[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    broken = StreamTranslator({"model": "m"}, "served")
    broken.start()
    failed = events(broken.fail("upstream timeout"))[-1]
    assert failed["type"] == "response.failed" and failed["response"]["error"]["message"] == "upstream timeout"


def test_a_whole_answer_with_odd_parts_left_out():
    answer = from_chat({"choices": [{"message": {"content": "hi", "tool_calls": ["junk", {"id": "c", "function": {
        "name": "f", "arguments": {"a": 1}}}]}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 3}}},
        {"model": "m", "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]}, "served", 42)
    assert [o["type"] for o in answer["output"]] == ["message", "function_call"]
    assert answer["output"][1]["arguments"] == '{"a":1}'
    assert answer["usage"]["input_tokens_details"] == {"cached_tokens": 3} and answer["usage"]["cost_nanos"] == 42
    assert answer["tools"] == [{"type": "function", "name": "f"}] and answer["model"] == "served"
