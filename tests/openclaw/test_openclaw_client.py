"""A real OpenClaw, configured by its config file alone, as a client of the gateway.

Covers what agents actually see: a turn billed exactly, a spent budget that fails the turn at
once with our message, and per-minute 429s that OpenClaw retries by itself.
"""

from __future__ import annotations

import time

import pytest
from openclaw_harness import OpenClaw, base_config, provider_entry
from openclaw_rig import RATE_LIMIT_RPM, GatewayRig
from openclaw_target import Record, Target, chat, error_code

pytestmark = pytest.mark.slow

OPENCLAW_UA = "OpenAI/JS"  # OpenClaw's requests come from the OpenAI JS SDK


def request_cost(input_tokens: int, output_tokens: int, in_per_mtok: int, out_per_mtok: int) -> int:
    try:
        from tollgate.domain.money import request_cost as product_cost
    except ImportError:  # the stand-in applies the same rule: summed, rounded up once
        return -((-(input_tokens * in_per_mtok + output_tokens * out_per_mtok)) // 1_000_000)
    return product_cost(input_tokens, output_tokens, in_per_mtok, out_per_mtok)


def from_openclaw(records: list[Record]) -> list[Record]:
    return [r for r in records if r.user_agent.startswith(OPENCLAW_UA)]


def configure(oc: OpenClaw, target: Target, key) -> None:
    oc.write_config(base_config({"tollgate": provider_entry(target, key)}, primary=f"tollgate/{target.model}"))


def test_turn_is_billed_exactly_what_openclaw_received(exec_openclaw, target):
    key = target.new_key(budget_usd="1", window="5h", rpm=600)
    configure(exec_openclaw, target, key)

    result = exec_openclaw.exec_turn("Reply with one short sentence.")

    assert result.ok, result
    assert result.data["final"] == target.reply_text
    records = target.records(key)
    assert [(r.status, r.code) for r in records] == [(200, None)], records
    billed = records[0]
    assert billed.user_agent.startswith(OPENCLAW_UA)
    usage = result.data["usage"]
    assert (billed.prompt_tokens, billed.completion_tokens) == (usage["input"], usage["output"])
    in_price, out_price = target.prices()
    assert billed.cost_nanos == request_cost(usage["input"], usage["output"], in_price, out_price)
    assert billed.cost_nanos > 0
    budget = target.usage(key)["budget"]
    assert budget["spent_nanos"] == billed.cost_nanos
    assert budget["remaining_nanos"] == budget["limit_nanos"] - billed.cost_nanos


def spend_budget(target: Target, key) -> dict:
    """Spend the key's window with ordinary requests; returns the budget 429's error."""
    for _ in range(500):
        status, body = chat(target, key, "spend " * 2000)
        if status == 429:
            assert error_code(body) == "budget_exceeded", body
            return body["error"]
        assert status == 200, body
    raise AssertionError("the budget never ran out")


def test_spent_budget_fails_the_turn_at_once_with_our_message(exec_openclaw, target):
    # Room for one of OpenClaw's 25-49K character prompts (a budget smaller than its smallest cost
    # would answer 400 request_exceeds_budget, not the 429), spent by smaller requests first.
    key = target.new_key(budget_usd="0.02", window="5h", rpm=6000)
    spent = spend_budget(target, key)
    configure(exec_openclaw, target, key)
    before = len(target.records(key))

    result = exec_openclaw.exec_turn("Reply with one short sentence.", timeout_s=120)

    assert not result.ok, result
    message = result.error_message
    # Our own text reaches the user: not a timeout, not OpenClaw's generic billing notice.
    assert "budget exceeded: usage limit reached" in message, result
    assert f"resets at {spent['reset_at']}" in message, result
    assert "timed out" not in message.lower()
    # One request, no retry loop; and no sleep on the hours-long Retry-After, or the run would
    # have ended on its own timeout with a different message.
    tried = from_openclaw(target.records(key)[before:])
    assert [(r.status, r.code) for r in tried] == [(429, "budget_exceeded")]


def drain_requests(target: Target, key) -> None:
    """Use up a key's per-minute requests, so the next one is refused for a short while."""
    for _ in range(RATE_LIMIT_RPM + 3):
        status, body = chat(target, key, "drain")
        if status == 429:
            assert error_code(body) == "rate_limit_exceeded", body
            return
    raise AssertionError("the per-minute limit never answered 429")


def test_per_minute_429_is_retried_by_openclaw_and_succeeds(gateway_rig: GatewayRig, target):
    key = gateway_rig.rate_key
    drain_requests(target, key)
    before = len(target.records(key))
    drained_at = time.monotonic()

    status, body = gateway_rig.gateway.turn("agent:main:per-minute", "Reply with one short sentence.",
                                            model=f"tollgate_rl/{target.model}")

    assert status == 200, (status, body, gateway_rig.gateway.log_tail())
    assert body["choices"][0]["message"]["content"] == target.reply_text
    tried = from_openclaw(target.records(key)[before:])
    outcomes = [(r.status, r.code) for r in tried]
    assert outcomes[0] == (429, "rate_limit_exceeded"), (
        f"OpenClaw's first request was not rate limited ({outcomes}); it came "
        f"{time.monotonic() - drained_at:.0f}s after the drain, later than the refill")
    assert outcomes[-1] == (200, None)
    assert all(o == (429, "rate_limit_exceeded") for o in outcomes[:-1])
