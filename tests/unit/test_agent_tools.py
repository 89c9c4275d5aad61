"""Tools from plain functions, and sub-agents run from inside a tool."""

from __future__ import annotations

from typing import Literal, Optional

import pytest
from tollgate.agent import Agent, ParkingQueue, StopReason, SubAgentFailed, Tool, run_subagent, tool_from_function
from tollgate.agent.tools import format_result, parse_arguments, unanswered_tool_calls

from tests.unit.test_agent_loop import NOW, Server, budget_429, call, text


def search(query: str, limit: int = 5, mode: Literal["fast", "deep"] = "fast", tags: list[str] | None = None,
           strict: Optional[bool] = None) -> list[str]:
    """Search the notes.

    Longer explanation that the model does not need.
    """
    return [query] * limit


def test_a_function_becomes_a_schema():
    tool = tool_from_function(search)
    schema = tool.schema()["function"]
    assert schema["name"] == "search" and schema["description"] == "Search the notes."
    props = schema["parameters"]["properties"]
    assert props["query"] == {"type": "string"} and props["limit"] == {"type": "integer"}
    assert props["mode"] == {"enum": ["fast", "deep"]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["strict"] == {"type": "boolean"}
    assert schema["parameters"]["required"] == ["query"]
    custom = Tool(name="x", fn=search, description="d", parameters={"type": "object", "properties": {}})
    assert custom.schema()["function"]["name"] == "x"


def test_arguments_and_results():
    assert parse_arguments('{"a": 1}') == {"a": 1} and parse_arguments("") == {} and parse_arguments(None) == {}
    with pytest.raises(ValueError):
        parse_arguments("[1]")
    assert format_result("text") == "text" and format_result({"a": 1}) == '{"a": 1}'
    assert format_result(object()).startswith('"<object')


def test_unanswered_tool_calls_are_those_after_the_last_assistant_message():
    calls = [{"id": "a"}, {"id": "b"}]
    messages = [{"role": "user"}, {"role": "assistant", "tool_calls": calls}, {"role": "tool", "tool_call_id": "a"}]
    assert unanswered_tool_calls(messages) == [{"id": "b"}]
    assert unanswered_tool_calls(messages + [{"role": "tool", "tool_call_id": "b"}]) == []
    assert unanswered_tool_calls([{"role": "user"}]) == []


def test_run_subagent_needs_a_running_tool():
    with pytest.raises(RuntimeError, match="inside a tool"):
        run_subagent(Agent(Server(), "m", usage=None), "task")


def test_a_parked_child_parks_its_parent_and_its_result_is_used_on_resume(tmp_path):
    queue = ParkingQueue(tmp_path)
    child_server = Server(budget_429())
    parent_server = Server(call("delegate", {"topic": "x"}, "c7"))

    def delegate(topic: str) -> str:
        """Hand the topic to a sub-agent."""
        return run_subagent(Agent(child_server, "small", usage=None, clock=lambda: NOW), f"research {topic}")

    parent = Agent(parent_server, "big", tools=[delegate], usage=None, queue=queue, clock=lambda: NOW)
    result = parent.run("go", session_id="p")
    assert result.stop is StopReason.PARKED and result.session.waiting_on == ["p.c7"]
    child = queue.get("p.c7")
    assert child.parent_id == "p" and child.messages[0]["content"] == "research x"

    queue.finish(child, stop="completed", output="child says 42")  # what the resumer does
    parent_server.script.append(text("the answer is 42"))
    done = parent.resume(queue.get("p"))
    assert done.stop is StopReason.COMPLETED
    assert done.messages[-2] == {"role": "tool", "tool_call_id": "c7", "content": "child says 42"}
    assert done.session.waiting_on == [] and child_server.calls[0]["model"] == "small"
    assert len(child_server.calls) == 1  # the finished child was not run again


def test_a_failed_child_is_reported_to_the_parents_model(tmp_path):
    queue = ParkingQueue(tmp_path)

    def delegate() -> str:
        """Hand off."""
        return run_subagent(Agent(Server(), "small", usage=None), "sub-task")

    queue.park(Agent(Server(), "small", usage=None).new_session("sub-task", session_id="p.c1", parent_id="p"))
    queue.fail(queue.get("p.c1"), reason="key_revoked", message="revoked")
    parent_server = Server(call("delegate", {}, "c1"), text("sorry"))
    result = Agent(parent_server, "big", tools=[delegate], usage=None, queue=queue).run("go", session_id="p")
    assert result.stop is StopReason.COMPLETED
    tool_reply = result.messages[-2]["content"]
    assert tool_reply.startswith("error: SubAgentFailed") and "key_revoked" in tool_reply
    assert issubclass(SubAgentFailed, Exception)
