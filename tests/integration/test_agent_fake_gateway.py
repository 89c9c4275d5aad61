"""FAKE-ONLY: the loop against `budget_gateway.py` behaviours the real gateway cannot be asked for
on demand (2 requests per second, an empty credit key, both /v1/usage envelopes).

These always use the fake, even when the e2e tests are pointed at the real gateway.
"""

from __future__ import annotations

import uuid

import openai
from tollgate.agent import Agent, ErrorKind, Limits, StopReason, UsageClient, UsageError

from tests.fakes.budget_gateway import scripted_reply
from tests.integration.agent_fixtures import (  # noqa: F401 (fixtures)
    SYSTEM,
    expected_answer,
    fake_budget_gateway,
    script,
    tick,
)


def _agent(base_url: str, key: str, **options) -> Agent:
    return Agent(openai.OpenAI(base_url=base_url, api_key=key), "tg-scripted-mini", tools=[tick], system=SYSTEM,
                 **options)


def test_per_minute_limits_are_waited_out_as_retry_after_says(fake_budget_gateway):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        import time

        slept.append(seconds)
        time.sleep(seconds)

    agent = _agent(fake_budget_gateway, f"sk_rpm_{uuid.uuid4().hex}", sleep=sleep,
                   limits=Limits(max_consecutive_errors=3, usage_check_every=0))
    result = agent.run(script("tick", "tick", "tick"))
    assert result.stop is StopReason.COMPLETED and result.output == expected_answer(3)
    assert slept and all(s == 1.0 for s in slept)  # the fake's Retry-After, slept as given


def test_empty_credits_stop_with_a_distinct_reason_and_never_park(fake_budget_gateway):
    result = _agent(fake_budget_gateway, f"sk_credit_{uuid.uuid4().hex}").run("hi")
    assert result.stop is StopReason.CREDITS_EXHAUSTED
    assert result.error.code == "insufficient_credits" and result.error.kind is ErrorKind.CREDITS


def test_an_unknown_key_and_an_unknown_model_stop_the_run(fake_budget_gateway):
    assert _agent(fake_budget_gateway, "sk_nonsense").run("hi").stop is StopReason.AUTH_FAILED
    bad_model = Agent(openai.OpenAI(base_url=fake_budget_gateway, api_key=f"sk_budget_{uuid.uuid4().hex}"),
                      "no-such-model", usage=False)
    assert bad_model.run("hi").stop is StopReason.BAD_REQUEST


def test_usage_reads_the_same_bare_or_enveloped(fake_budget_gateway):
    token = uuid.uuid4().hex
    wrapped = UsageClient(fake_budget_gateway, f"sk_budget_{token}").fetch()
    bare = UsageClient(fake_budget_gateway, f"sk_budget_bare_{token}").fetch()
    assert wrapped.limit_nanos == bare.limit_nanos and wrapped.limit_nanos > 0
    assert wrapped.remaining_nanos == wrapped.limit_nanos and bare.resets_at is not None
    try:
        UsageClient(fake_budget_gateway, f"sk_revoked_{token}").fetch()
    except UsageError as exc:
        assert exc.info.kind is ErrorKind.AUTH and exc.info.code == "key_revoked"
    else:
        raise AssertionError("a revoked key read its usage")


def test_the_scripted_model_is_driven_by_the_transcript_alone():
    messages = [{"role": "user", "content": "[[script:a,b]]"}]
    first = scripted_reply(messages)
    assert first["tool_calls"][0]["function"]["name"] == "a"
    messages += [first, {"role": "tool", "tool_call_id": "call_1", "content": "A"}]
    second = scripted_reply(messages)
    assert second["tool_calls"][0]["function"]["name"] == "b" and second["tool_calls"][0]["id"] == "call_2"
    messages += [second, {"role": "tool", "tool_call_id": "call_2", "content": "B"}]
    assert scripted_reply(messages) == {"role": "assistant", "content": "done: A | B"}
    assert scripted_reply([{"role": "user", "content": "hello"}])["content"] == "ok"
