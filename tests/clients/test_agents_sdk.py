"""The OpenAI Agents SDK (its default model class: the Responses API) against the real gateway: an agent
with one function tool billed exactly, and a spent budget that raises at once with our message."""

from __future__ import annotations

import asyncio

import pytest

from tests.clients.openai_fixtures import BUDGET_MESSAGE, OPENAI_MODEL, OpenAIRig, need_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def agents_sdk() -> None:
    need_module("agents", "the OpenAI Agents SDK (openai-agents)")

PROMPT = 'What is the weather in Oslo? [[call:weather {"city": "Oslo"}]]'


def agent_for(rig: OpenAIRig, key: dict, calls: list[str]):
    from agents import Agent, OpenAIResponsesModel, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)

    @function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny-in-{city}"

    client = AsyncOpenAI(base_url=rig.base_url, api_key=key["sk"])  # the SDK's own retry settings
    model = OpenAIResponsesModel(model=OPENAI_MODEL, openai_client=client)
    return Agent(name="forecaster", instructions="Answer with the tool's words.", model=model, tools=[weather])


@pytest.mark.parametrize("streamed", [False, True])
def test_an_agent_calls_its_tool_and_is_billed_exactly(openai_rig, streamed):
    from agents import Runner

    key = openai_rig.key()
    calls: list[str] = []
    agent = agent_for(openai_rig, key, calls)

    async def run() -> str:
        if not streamed:
            return (await asyncio.wait_for(Runner.run(agent, PROMPT, max_turns=4), 60)).final_output
        result = Runner.run_streamed(agent, PROMPT, max_turns=4)
        async for _ in result.stream_events():
            pass
        return result.final_output

    final = asyncio.run(run())

    assert calls == ["Oslo"]
    assert "sunny-in-Oslo" in final  # the model's answer read the tool's output
    openai_rig.check_billed_as_reported(key, turns=2)


def test_a_spent_budget_raises_at_once_with_our_message(openai_rig):
    import openai
    from agents import Runner

    key, spent, before = openai_rig.spent_key()
    calls: list[str] = []
    agent = agent_for(openai_rig, key, calls)

    with pytest.raises(openai.RateLimitError) as caught:
        asyncio.run(asyncio.wait_for(Runner.run(agent, PROMPT, max_turns=4), 60))

    assert BUDGET_MESSAGE + spent["reset_at"] in str(caught.value)
    assert caught.value.code == "budget_exceeded"
    assert calls == []
    openai_rig.check_stopped_at_once(key, before)
