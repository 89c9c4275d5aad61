"""`guard()` on the official `openai` client, over an in-memory transport that plays the gateway."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import httpx2
import openai
import pytest
from tollgate.agent import BudgetExhausted, guard
from tollgate.agent.adapters import GuardedClient

OK = {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
BUDGET = (429, {"Retry-After": "10800", "x-should-retry": "false"},
          {"error": {"message": "budget exceeded: usage limit reached for this 5h window; resets at "
                                "2026-11-29T15:00:00Z", "type": "budget_exceeded", "param": None,
                     "code": "budget_exceeded", "reset_at": "2026-11-29T15:00:00Z"}})
RATE = (429, {"Retry-After": "3"}, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}})
LONG_RATE = (429, {"Retry-After": "900"}, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}})
DOWN = (503, {}, {"error": {"message": "upstream down"}})
FINE = (200, {}, OK)


class Gateway:
    """Plays back (status, headers, body) answers and counts the requests that reached it."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request.url.path)
        if request.url.path.endswith("/usage"):
            body = {"success": True, "data": {"budget": {"spent": 0.14, "limit": 0.14, "remaining": 0,
                                                          "resets_at": "2026-11-29T20:00:00Z"}}}
            return httpx2.Response(200, json=body)
        status, headers, body = self.answers.pop(0)
        return httpx2.Response(status, headers=headers, content=json.dumps(body).encode())


def sync_client(gateway: Gateway, **options) -> tuple[GuardedClient, list[float]]:
    slept: list[float] = []
    raw = openai.OpenAI(base_url="http://gw/v1", api_key="sk_test",
                        http_client=httpx2.Client(transport=httpx2.MockTransport(gateway)))
    return guard(raw, sleep=slept.append, usage=False, **options), slept


def test_a_budget_429_raises_budget_exhausted_at_once_with_the_reset_time():
    gateway = Gateway(BUDGET, FINE)
    client, slept = sync_client(gateway)
    with pytest.raises(BudgetExhausted) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.reset_at == datetime(2026, 11, 29, 15, tzinfo=timezone.utc)
    assert isinstance(caught.value.__cause__, openai.RateLimitError)
    assert len(gateway.requests) == 1 and slept == []  # no retry, no sleep


def test_short_rate_limits_and_outages_are_retried_within_the_retry_budget():
    gateway = Gateway(RATE, DOWN, FINE)
    client, slept = sync_client(gateway, max_retries=2)
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "hi"
    assert slept[0] == 3.0 and 0.75 <= slept[1] <= 1.0 and len(gateway.requests) == 3


def test_retries_run_out_and_the_original_error_surfaces():
    client, _ = sync_client(Gateway(DOWN, DOWN, DOWN), max_retries=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=[])


def test_a_long_rate_limit_is_never_slept_on():
    gateway = Gateway(LONG_RATE, FINE)
    client, slept = sync_client(gateway)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=[])
    assert slept == [] and len(gateway.requests) == 1


def test_without_a_reset_in_the_error_the_reset_comes_from_usage():
    bare = (429, {"x-should-retry": "false"}, {"error": {"message": "spent", "code": "budget_exceeded"}})
    gateway = Gateway(bare)
    raw = openai.OpenAI(base_url="http://gw/v1", api_key="sk_test",
                        http_client=httpx2.Client(transport=httpx2.MockTransport(gateway)))

    class Usage:  # GET /v1/usage through the same in-memory transport
        def fetch(self):
            from tollgate.agent import parse_usage

            return parse_usage(raw.get("/usage", cast_to=httpx2.Response).text)

    client = guard(raw, usage=Usage())
    with pytest.raises(BudgetExhausted) as caught:
        client.chat.completions.create(model="m", messages=[])
    assert caught.value.reset_at == datetime(2026, 11, 29, 20, tzinfo=timezone.utc)
    assert caught.value.info.reset_source == "usage"


def test_the_guarded_client_looks_like_the_client():
    client, _ = sync_client(Gateway(FINE, FINE))
    assert client.api_key == "sk_test" and str(client.base_url) == "http://gw/v1/"
    assert client.max_retries == 0  # the SDK's own retries are off; the guard retries instead
    copy = client.with_options(timeout=5)
    assert isinstance(copy, GuardedClient)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=[])
    assert raw.parse().choices[0].message.content == "hi"


def test_the_async_client_is_guarded_the_same_way():
    gateway = Gateway(RATE, BUDGET)
    slept: list[float] = []

    async def main() -> BudgetExhausted:
        raw = openai.AsyncOpenAI(base_url="http://gw/v1", api_key="sk_test",
                                 http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(gateway)))
        async def record(seconds: float) -> None:
            slept.append(seconds)

        client = guard(raw, usage=False, async_sleep=record)
        try:
            await client.chat.completions.create(model="m", messages=[])
        except BudgetExhausted as exc:
            return exc
        raise AssertionError("no BudgetExhausted")

    exc = asyncio.run(main())
    assert exc.reset_at == datetime(2026, 11, 29, 15, tzinfo=timezone.utc)
    assert len(gateway.requests) == 2 and slept == [3.0]  # the rate limit was retried, the budget was not
