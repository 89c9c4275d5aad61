"""A failure nobody foresaw in the middle of a request still ends its reservation, once, with one record.

The real flow, admitter, ledger and SQLite store; the upstream and the sink are
scripted, and the sink (or the flow's own body builder) fails the way a bug
would. Whatever fails, and wherever: the error still reaches the caller, nothing
stays reserved, and exactly one usage record is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tollgate.config.schema import ModelConfig
from tollgate.domain.accounts import Account, ApiKey, KeyContext
from tollgate.domain.usage import CLIENT_GONE, GATEWAY_FAILED, OK
from tollgate.ledger.embedded import EmbeddedLedger
from tollgate.ledger.ratelimit import RateLimiter
from tollgate.ledger.writer import LedgerWriter
from tollgate.proxy.admission import Admitter, KeyLimits
from tollgate.proxy.call import CHAT, Call
from tollgate.proxy.flow import Flow
from tollgate.proxy.guard import Watch
from tollgate.proxy.models import ServedModel
from tollgate.store.sqlite import SQLiteStore

ANSWER = b'{"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}'
EVENTS = [b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n', b"data: [DONE]\n\n"]


class Response:
    status = 200
    headers: dict = {}

    def __init__(self) -> None:
        self.closed = False

    async def read(self) -> bytes:
        return ANSWER

    async def chunks(self) -> AsyncIterator[bytes]:
        for event in EVENTS:
            yield event

    async def aclose(self) -> None:
        self.closed = True


class Upstream:
    name = "scripted"
    inflight = 0
    reports_usage = True

    async def send(self, path: str, body: bytes, request_id: str | None = None, client_headers: object = None) -> Response:
        return Response()


class Sink:
    """Fails in the named step, as a sink with a bug (or a client cancelled there) would."""

    def __init__(self, fail_in: str, error: BaseException) -> None:
        self.fail_in, self.error = fail_in, error

    def _step(self, name: str) -> None:
        if name == self.fail_in:
            raise self.error

    async def reply(self, exchange, body, obj, settled) -> None:
        self._step("reply")

    def status_for(self, refusal) -> int:
        return 502

    async def refuse(self, exchange, refusal) -> None:
        self._step("refuse")

    async def open(self, exchange) -> None:
        self._step("open")

    async def events(self, events) -> None:
        self._step("events")

    async def close(self, exchange, usage, settled, usage_event, failure, held) -> None:
        self._step("close")


async def scenario(tmp_path, stream: bool, sink: Sink, break_body: bool = False) -> tuple[BaseException, list, int]:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'flow.db'}")
    await store.open()
    ledger = EmbeddedLedger(store, LedgerWriter(store), reservation_ttl=60, admission_wait=0)
    await ledger.start()
    flow = Flow(Admitter(ledger, RateLimiter(), KeyLimits(1000, 10**9)), ledger)
    if break_body:
        def broken(ex, model):
            raise KeyError("a bug in the body builder")
        flow._body = broken  # type: ignore[method-assign]
    model = ServedModel(ModelConfig("m", ("scripted",), "m", 10**9, 2 * 10**9, context=1000, max_output=50),
                        [Upstream()])
    ctx = KeyContext(ApiKey("k", "a", "credit", "k", "p", 0), Account("a", "A", 0, credits_granted=10**12), None, None)
    call = Call(endpoint=CHAT, body={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
                chain=[model], stream=stream, request_id="req_1")

    async def receive() -> dict:
        await asyncio.Event().wait()
        return {}

    error: BaseException | None = None
    try:
        await flow.run(ctx, call, sink, Watch().guard(receive))
    except BaseException as exc:  # noqa: BLE001 (the error must come out: it is what the test looks at)
        error = exc
    await ledger.writer.commit()
    records = await store.usage_records("a")
    held = ledger.open_reservations()
    await ledger.close()
    await store.close()
    assert error is not None
    return error, records, held


@pytest.mark.parametrize("stream, step, error, status", [
    (False, "reply", RuntimeError("a bug in the sink"), OK),  # settled already: the charge stands
    (True, "events", RuntimeError("a bug in the translator"), GATEWAY_FAILED),
    (True, "close", TypeError("a bug at the end"), OK),
    (True, "open", asyncio.CancelledError(), CLIENT_GONE),  # a cancellation nobody absorbed
])
def test_a_failing_sink_still_ends_the_reservation_with_one_record(tmp_path, stream, step, error, status):
    raised, records, held = asyncio.run(scenario(tmp_path, stream, Sink(step, error)))
    assert type(raised) is type(error)
    assert held == 0
    assert [r.status for r in records] == [status]
    assert all(r.cost >= 0 and r.input_tokens >= 0 for r in records)
    if status == GATEWAY_FAILED:
        assert records[0].error.startswith("gateway error: RuntimeError") and records[0].cost > 0


def test_a_bug_before_the_upstream_answered_releases_the_reservation(tmp_path):
    raised, records, held = asyncio.run(scenario(tmp_path, False, Sink("none", RuntimeError()), break_body=True))
    assert isinstance(raised, KeyError) and held == 0
    assert [(r.status, r.cost) for r in records] == [(GATEWAY_FAILED, 0)]
