"""The budgeted loop's rules, against a scripted stand-in for the server (no network, no sleeping)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest
from tollgate.agent import (
    Agent,
    AsyncAgent,
    BudgetStatus,
    Downgrade,
    ErrorKind,
    Limits,
    ParkingQueue,
    StopReason,
    UsageError,
)
from tollgate.agent.errors import ErrorInfo
from tollgate.agent.timefmt import format_instant, utc_from_epoch

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc).timestamp()
RESET = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)


def api_error(status: int, code: str | None, headers: dict | None = None, **extra: Any) -> openai.APIStatusError:
    body = {"error": {"message": f"{code} happened", "type": code, "param": None, "code": code, **extra}}
    request = httpx2.Request("POST", "http://gw/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, content=json.dumps(body).encode(), request=request)
    return openai.OpenAI(base_url="http://gw/v1", api_key="k")._make_status_error("err", body=body, response=response)


def budget_429(**extra: Any) -> openai.APIStatusError:
    fields = {"reset_at": format_instant(RESET)} | extra
    return api_error(429, "budget_exceeded", {"Retry-After": "10800", "x-should-retry": "false"}, **fields)


def call(name: str, args: dict | None = None, call_id: str = "c1") -> dict:
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args or {})}}]}
    return {"choices": [{"message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10}}


def text(content: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 5}}


class Server:
    """Answers `chat.completions.create` from a script of replies and exceptions."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[dict] = []
        self.chat = SimpleNamespace(completions=self)

    def create(self, **kwargs: Any) -> Any:
        self.calls.append({**kwargs, "messages": [dict(m) for m in kwargs["messages"]]})
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class Usage:
    """Answers the budget check from a list of readings (the last one repeats)."""

    def __init__(self, *readings: Any) -> None:
        self.readings = list(readings)
        self.count = 0

    def fetch(self) -> BudgetStatus:
        self.count += 1
        item = self.readings[min(self.count - 1, len(self.readings) - 1)]
        if isinstance(item, Exception):
            raise item
        return item


def status(remaining: str, limit: str = "1", resets_at: datetime = RESET) -> BudgetStatus:
    from tollgate.agent.usage import usd_nanos

    return BudgetStatus(limit_nanos=usd_nanos(limit), remaining_nanos=usd_nanos(remaining), resets_at=resets_at)


def agent(server: Server, *, usage: Any = None, queue: ParkingQueue | None = None, tools=(), clock=lambda: NOW,
          **options: Any) -> tuple[Agent, list[float]]:
    slept: list[float] = []
    built = Agent(server, "big", tools=tools, usage=usage, queue=queue, sleep=slept.append, clock=clock, **options)
    return built, slept


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_a_tool_call_then_an_answer_completes_with_the_whole_transcript():
    server = Server(call("add", {"a": 2, "b": 3}), text("5"))
    result = agent(server, tools=[add], system="be brief")[0].run("what is 2+3?")
    assert result.stop is StopReason.COMPLETED and result.output == "5"
    assert [m["role"] for m in result.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert result.messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "5"}
    assert server.calls[0]["tools"][0]["function"]["name"] == "add"
    assert server.calls[1]["messages"] == result.messages[:4]
    assert [s.tool_calls for s in result.steps] == [("add",), ()]
    assert result.session.step == 2 and result.session.prompt_tokens == 220


def test_the_step_cap_holds_across_resumes():
    server = Server(*[call("add", {"a": 1, "b": 1}, f"c{i}") for i in range(10)])
    looping, _ = agent(server, tools=[add], limits=Limits(max_steps=3))
    result = looping.run("loop forever")
    assert result.stop is StopReason.MAX_STEPS and result.session.step == 3 and len(server.calls) == 3
    again = looping.resume(result.session)
    assert again.stop is StopReason.MAX_STEPS and len(server.calls) == 3  # no fresh allowance after a park


def test_consecutive_transient_errors_stop_the_run_with_growing_backoff():
    server = Server(api_error(500, None), api_error(502, None), api_error(503, None), text("never"))
    looping, slept = agent(server, limits=Limits(max_consecutive_errors=3))
    result = looping.run("hi")
    assert result.stop is StopReason.TOO_MANY_ERRORS and result.error.kind is ErrorKind.TRANSIENT
    assert len(slept) == 2 and 0.375 <= slept[0] <= 0.5 and 0.75 <= slept[1] <= 1.0
    assert result.resumable


def test_a_success_resets_the_error_count():
    server = Server(api_error(500, None), api_error(500, None), call("add", {"a": 1, "b": 2}),
                    api_error(500, None), api_error(500, None), text("3"))
    result = agent(server, tools=[add], limits=Limits(max_consecutive_errors=3))[0].run("hi")
    assert result.stop is StopReason.COMPLETED


def test_a_short_rate_limit_is_waited_out_as_the_server_asks():
    server = Server(api_error(429, "rate_limit_exceeded", {"Retry-After": "7"}), text("ok"))
    result, slept = None, None
    looping, slept = agent(server)
    result = looping.run("hi")
    assert result.stop is StopReason.COMPLETED and slept == [7.0]


def test_a_long_rate_limit_parks_instead_of_sleeping(tmp_path):
    server = Server(api_error(429, "rate_limit_exceeded", {"Retry-After": "900"}))
    looping, slept = agent(server, queue=ParkingQueue(tmp_path))
    result = looping.run("hi")
    assert result.stop is StopReason.PARKED and slept == []
    assert result.reset_at == utc_from_epoch(NOW) + timedelta(seconds=900)
    assert result.session.reset_source == "retry_after"


def test_a_budget_429_parks_the_session_with_the_servers_reset_time(tmp_path):
    queue = ParkingQueue(tmp_path)
    server = Server(call("add", {"a": 1, "b": 1}), budget_429())
    result = agent(server, tools=[add], queue=queue)[0].run("hi", session_id="s1", metadata={"owner": "ci"})
    assert result.stop is StopReason.PARKED and result.reset_at == RESET
    parked = queue.get("s1")
    assert parked.messages == result.messages and len(parked.messages) == 3
    assert (parked.reason, parked.reset_source, parked.step) == ("budget_exceeded", "error_body", 1)
    assert parked.metadata == {"owner": "ci"} and parked.tool_names == ["add"]


def test_without_a_queue_a_budget_429_returns_the_session_and_reset_time():
    result, slept = None, None
    looping, slept = agent(Server(budget_429()))
    result = looping.run("hi")
    assert result.stop is StopReason.BUDGET_EXHAUSTED and result.reset_at == RESET and slept == []
    assert result.session.messages == [{"role": "user", "content": "hi"}]


def test_reset_time_falls_back_to_usage_then_to_a_stated_default():
    bare = api_error(429, "budget_exceeded", {"x-should-retry": "false"})
    from_usage = agent(Server(bare), usage=Usage(status("0.5"), status("0", resets_at=RESET)),
                       limits=Limits(usage_check_every=0))[0].run("hi")
    assert from_usage.reset_at == RESET and from_usage.session.reset_source == "usage"
    down = UsageError(ErrorInfo(kind=ErrorKind.TRANSIENT, message="502"))
    fallback = agent(Server(bare), usage=Usage(down), limits=Limits(unknown_reset_seconds=120))[0].run("hi")
    assert fallback.reset_at == utc_from_epoch(NOW + 120) and fallback.session.reset_source == "fallback"


@pytest.mark.parametrize(
    ("error", "stop"),
    [
        (api_error(429, "insufficient_credits"), StopReason.CREDITS_EXHAUSTED),
        (api_error(401, "invalid_api_key"), StopReason.AUTH_FAILED),
        (api_error(403, "key_revoked"), StopReason.AUTH_FAILED),
        (api_error(400, "context_length_exceeded"), StopReason.CONTEXT_TOO_LONG),
        (api_error(404, "model_not_found"), StopReason.BAD_REQUEST),
    ],
)
def test_non_retriable_errors_stop_at_once_and_never_park(tmp_path, error, stop):
    queue = ParkingQueue(tmp_path)
    looping, slept = agent(Server(error), queue=queue)
    result = looping.run("hi")
    assert result.stop is stop and not result.resumable
    assert slept == [] and len(queue) == 0 and result.error.status == error.status_code


def test_the_budget_is_read_every_n_steps_and_a_low_budget_downgrades():
    readings = Usage(status("0.9"), status("0.1"), status("0.1"))
    server = Server(*[call("add", {"a": i, "b": 0}, f"c{i}") for i in range(4)], text("done"))
    looping, _ = agent(server, tools=[add], usage=readings, limits=Limits(usage_check_every=2),
                       downgrade=Downgrade(model="small", below_usd="0.2"))
    result = looping.run("go")
    assert result.stop is StopReason.COMPLETED
    assert readings.count == 3  # before steps 1, 3 and 5
    assert [c["model"] for c in server.calls] == ["big", "big", "small", "small", "small"]
    assert [s.remaining_before_nanos for s in result.steps][:3] == [900_000_000, 900_000_000, 100_000_000]


def test_after_the_window_resets_the_primary_model_returns():
    now = [NOW]

    def wait_hours(hours: int) -> str:
        """A slow tool: the budget window resets while it runs."""
        now[0] += hours * 3600
        return "waited"

    server = Server(call("wait_hours", {"hours": 4}), text("ok"))
    looping, _ = agent(server, tools=[wait_hours], usage=Usage(status("0.01", resets_at=RESET)),
                       limits=Limits(usage_check_every=10), downgrade=Downgrade(model="small", below_fraction="0.5"),
                       clock=lambda: now[0])
    looping.run("go")
    assert [c["model"] for c in server.calls] == ["small", "big"]  # the low reading belongs to a past window


def test_an_empty_budget_parks_before_sending_anything(tmp_path):
    server = Server()
    result = agent(server, usage=Usage(status("0")), queue=ParkingQueue(tmp_path))[0].run("hi")
    assert result.stop is StopReason.PARKED and server.calls == []
    assert result.reset_at == RESET and result.session.reason == "budget_low"


def test_a_refused_key_on_the_budget_check_stops_but_a_broken_usage_endpoint_does_not():
    refused = UsageError(ErrorInfo(kind=ErrorKind.AUTH, message="revoked", status=403, code="key_revoked"))
    assert agent(Server(), usage=Usage(refused))[0].run("hi").stop is StopReason.AUTH_FAILED
    missing = UsageError(ErrorInfo(kind=ErrorKind.BAD_REQUEST, message="no route", status=404))
    assert agent(Server(text("fine")), usage=Usage(missing))[0].run("hi").stop is StopReason.COMPLETED


def test_tool_failures_are_shown_to_the_model():
    def explode(reason: str) -> str:
        raise ValueError(reason)

    server = Server(call("explode", {"reason": "disk full"}, "c1"), call("nope", {}, "c2"),
                    {"choices": [{"message": {"role": "assistant", "tool_calls": [
                        {"id": "c3", "type": "function", "function": {"name": "add", "arguments": "{not json"}}]}}]},
                    text("gave up"))
    result = agent(server, tools=[explode, add])[0].run("hi")
    tool_replies = [m["content"] for m in result.messages if m["role"] == "tool"]
    assert tool_replies[0] == "error: ValueError: disk full"
    assert tool_replies[1] == "error: unknown tool 'nope'"
    assert tool_replies[2].startswith("error: JSONDecodeError")
    assert result.stop is StopReason.COMPLETED


def test_a_full_queue_returns_queue_full_with_the_transcript(tmp_path):
    queue = ParkingQueue(tmp_path, max_entries=1)
    agent(Server(budget_429()), queue=queue)[0].run("first", session_id="a")
    result = agent(Server(budget_429()), queue=queue)[0].run("second", session_id="b")
    assert result.stop is StopReason.QUEUE_FULL and result.reset_at == RESET
    assert result.session.messages[0]["content"] == "second" and queue.get("b") is None


def test_resuming_runs_unanswered_tool_calls_before_calling_the_model():
    looping, _ = agent(Server(text("7")), tools=[add])
    session = looping.new_session("add 3 and 4", session_id="p")
    session.messages.append(call("add", {"a": 3, "b": 4}, "c9")["choices"][0]["message"])
    result = looping.resume(session)
    assert result.messages[-2] == {"role": "tool", "tool_call_id": "c9", "content": "7"}
    assert result.stop is StopReason.COMPLETED


def test_bugs_in_the_callers_code_are_not_swallowed():
    with pytest.raises(TypeError):
        agent(Server(TypeError("unexpected keyword")))[0].run("hi")


def test_costs_come_from_the_cost_header_or_the_price_table():
    class RawServer(Server):
        def __init__(self, *script: Any) -> None:
            super().__init__(*script)
            self.with_raw_response = SimpleNamespace(create=self.raw_create)

        def raw_create(self, **kwargs: Any) -> Any:
            reply = self.create(**kwargs)
            headers = {"x-request-cost": "0.000123", "x-budget-remaining": "0.5", "x-budget-limit": "1",
                       "x-budget-reset": format_instant(RESET)}
            return SimpleNamespace(headers=headers, parse=lambda: reply)

    priced = agent(Server(text("a")), prices={"big": (1_000_000_000, 2_000_000_000)})[0].run("hi")
    assert priced.steps[0].cost_nanos == 120 * 1000 + 5 * 2000
    headed = agent(RawServer(text("a")))[0].run("hi")
    assert headed.steps[0].cost_nanos == 123_000 and headed.steps[0].remaining_nanos == 500_000_000
    assert headed.cost_nanos == headed.session.cost_nanos == 123_000


def test_the_async_agent_follows_the_same_rules(tmp_path):
    class AsyncServer(Server):
        async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
            await asyncio.sleep(0)
            return Server.create(self, **kwargs)

    async def lookup(key: str) -> str:
        """An async tool."""
        await asyncio.sleep(0)
        return key.upper()

    queue = ParkingQueue(tmp_path)
    server = AsyncServer(call("lookup", {"key": "abc"}), budget_429())
    runner = AsyncAgent(server, "big", tools=[lookup], usage=None, queue=queue, clock=lambda: NOW)
    parked = asyncio.run(runner.run("go", session_id="as"))
    assert parked.stop is StopReason.PARKED and parked.messages[-1]["content"] == "ABC"
    server.script.append(text("finished"))
    done = asyncio.run(runner.resume(queue.get("as")))
    assert done.stop is StopReason.COMPLETED and done.output == "finished"


def test_a_sync_agent_refuses_an_async_client():
    class AsyncServer(Server):
        async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
            return text("x")

    with pytest.raises(TypeError, match="AsyncAgent"):
        agent(AsyncServer())[0].run("hi")


def test_both_agents_run_one_driver_and_reach_the_same_result(tmp_path):
    """The sync and async agents share `Agent._drive`; the same script must give the same transcript."""
    class AsyncServer(Server):
        async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
            await asyncio.sleep(0)  # really suspends: the async path must await it
            return Server.create(self, **kwargs)

    script = (call("add", {"a": 2, "b": 3}), api_error(503, None), text("5"))
    slept: list[float] = []

    async def nap(seconds: float) -> None:
        slept.append(seconds)

    sync = agent(Server(*script), tools=[add], rng=random.Random(7))[0].run("2+3?", session_id="same")
    runner = AsyncAgent(AsyncServer(*script), "big", tools=[add], usage=None, sleep=nap, clock=lambda: NOW,
                        rng=random.Random(7))
    async_ = asyncio.run(runner.run("2+3?", session_id="same"))
    assert sync.stop is async_.stop is StopReason.COMPLETED
    assert sync.messages == async_.messages and sync.output == async_.output == "5"
    assert len(slept) == 1  # the async sleep was awaited for the one transient error


def test_a_sync_agent_runs_inside_a_running_event_loop():
    """The sync driver needs no event loop of its own, so it works from async code (or a notebook)."""
    async def caller() -> Any:
        return agent(Server(text("fine")))[0].run("hi")

    assert asyncio.run(caller()).output == "fine"


def test_run_blocking_refuses_a_coroutine_that_suspends():
    from tollgate.agent.runners import run_blocking

    async def plain() -> int:
        return 3

    async def suspends() -> int:
        await asyncio.sleep(0)
        return 4

    assert run_blocking(plain()) == 3
    with pytest.raises(RuntimeError, match="AsyncAgent"):
        run_blocking(suspends())
