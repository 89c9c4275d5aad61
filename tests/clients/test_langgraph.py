"""LangGraph's prebuilt ReAct agent over `ChatOpenAI` (chat completions with tools) against the real gateway:
one tool call billed exactly, and a spent budget that raises at once with our message."""

from __future__ import annotations

import warnings

import pytest

from tests.clients.openai_fixtures import BUDGET_MESSAGE, OPENAI_MODEL, OpenAIRig, need_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

PROMPT = 'What is the weather in Oslo? [[call:weather {"city": "Oslo"}]]'


@pytest.fixture(autouse=True)
def langgraph_installed() -> None:
    need_module("langgraph", "LangGraph (langgraph)")
    need_module("langchain_openai", "LangChain's OpenAI models (langchain-openai)")


def react_agent(rig: OpenAIRig, key: dict, calls: list[str]):
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    with warnings.catch_warnings():  # it moved to langchain.agents; this one still works and needs no more packages
        warnings.simplefilter("ignore", DeprecationWarning)
        from langgraph.prebuilt import create_react_agent

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny-in-{city}"

    llm = ChatOpenAI(model=OPENAI_MODEL, base_url=rig.base_url, api_key=key["sk"], timeout=30)  # its own retries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(llm, [weather])


def test_a_react_agent_calls_its_tool_and_is_billed_exactly(openai_rig):
    key = openai_rig.key()
    calls: list[str] = []
    agent = react_agent(openai_rig, key, calls)

    result = agent.invoke({"messages": [("user", PROMPT)]}, {"recursion_limit": 6})

    assert calls == ["Oslo"]
    assert "sunny-in-Oslo" in result["messages"][-1].content
    openai_rig.check_billed_as_reported(key, turns=2)


def test_a_spent_budget_raises_at_once_with_our_message(openai_rig):
    import openai

    key, spent, before = openai_rig.spent_key()
    calls: list[str] = []
    agent = react_agent(openai_rig, key, calls)

    with pytest.raises(openai.RateLimitError) as caught:
        agent.invoke({"messages": [("user", PROMPT)]}, {"recursion_limit": 6})

    assert BUDGET_MESSAGE + spent["reset_at"] in str(caught.value)
    assert calls == []
    openai_rig.check_stopped_at_once(key, before)
