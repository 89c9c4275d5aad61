"""A hostile upstream, every fault through every endpoint: the gateway answers, settles and stays well.

The upstream (tests/fakes/faulty_upstream.py, a real server process) sends
absurd usage numbers, odd JSON, malformed SSE, oversized answers, wrong
Content-Lengths, invalid HTTP and connections closed mid-answer. Each fault goes
through /v1/chat/completions, /v1/completions and /anthropic/v1/messages, streamed
and not, and /v1/embeddings. Every client gets an answer or a clean error in its
API's shape (a stream ends with its end marker or an error event), and then:
nothing is left reserved, /v1/usage equals the sum of the usage records, one
record per request with every number within what the request could have
produced, absurd usage flagged, nothing set aside, no request sent upstream
twice, another account still served, and the gateway restarts on the same
database with the same totals.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys

import httpx
import pytest

from tests.fakes.faulty_upstream import ABSURD_USAGE, FAULTS
from tests.support.processes import Process, free_port

CONTEXT, MAX_TOKENS = 4096, 16
IN, OUT = 1000, 2000  # nano-dollars per token
# No record may hold more than the request could have produced: the context plus the output allowed.
CEILING = CONTEXT + MAX_TOKENS
KINDS = ("chat", "chat-stream", "completions", "completions-stream", "anthropic", "anthropic-stream", "embeddings")
# A usage block whose counts are believable (only its cached tokens are absurd): taken as given.
BELIEVABLE = {"usage-cached-absurd"}


def hostile_config(url: str) -> dict:
    return {
        "upstreams": [{"name": "faulty", "base_url": url + "/v1", "timeout": 2, "first_byte_timeout": 2,
                       "max_response_bytes": 1 << 20}],
        "models": [
            {"id": "fc", "upstream": "faulty", "input_per_mtok": "1", "output_per_mtok": "2", "context": CONTEXT,
             "max_output": 256},
            {"id": "fe", "upstream": "faulty", "input_per_mtok": "1", "capabilities": ["embeddings"],
             "context": CONTEXT},
        ],
        "plans": [{"slug": "big", "window": "5h", "budget_per_window": "100", "rpm": 1_000_000,
                   "tpm": 1_000_000_000}],
    }


def request_for(kind: str, fault: str | None) -> tuple[str, dict, bool]:
    text = f"hello there [[fault:{fault}]]" if fault else "hello there"
    stream = kind.endswith("-stream")
    if kind.startswith("chat"):
        body = {"model": "fc", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": text}]}
        path = "/v1/chat/completions"
    elif kind.startswith("completions"):
        body = {"model": "fc", "max_tokens": MAX_TOKENS, "prompt": text}
        path = "/v1/completions"
    elif kind.startswith("anthropic"):
        body = {"model": "fc", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": text}]}
        path = "/anthropic/v1/messages"
    else:
        return "/v1/embeddings", {"model": "fe", "input": text}, False
    if stream:
        body["stream"] = True
        if not kind.startswith("anthropic"):
            body["stream_options"] = {"include_usage": True}
    return path, body, stream


def check_error_shape(kind: str, status: int, body: object) -> None:
    assert 400 <= status <= 599, status
    assert isinstance(body, dict), body
    if kind.startswith("anthropic"):
        assert body["type"] == "error" and isinstance(body["error"]["message"], str), body
    else:
        assert isinstance(body["error"]["message"], str), body


def check_stream_end(kind: str, text: str) -> None:
    """The stream ended as streams end: OpenAI's [DONE] or an error event, Anthropic's message_stop or error."""
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    assert data, text[:500]
    if kind.startswith("anthropic"):
        events = [line[6:].strip() for line in text.splitlines() if line.startswith("event:")]
        assert events[-1] in ("message_stop", "error"), events[-5:]
        return
    last = data[-1]
    assert last == "[DONE]" or "error" in json.loads(last), last[:300]


async def one(client: httpx.AsyncClient, kind: str, fault: str | None, sk: str) -> tuple[str, str | None, int, str]:
    path, body, stream = request_for(kind, fault)
    headers = {"x-api-key": sk} if kind.startswith("anthropic") else {"Authorization": f"Bearer {sk}"}
    async with client.stream("POST", path, json=body, headers=headers) as response:
        raw = await response.aread()  # a dropped connection or a hang fails the test here
    text = raw.decode("utf-8", "replace")
    is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
    if response.status_code != 200:
        check_error_shape(kind, response.status_code, json.loads(text))
    elif stream and is_sse:
        check_stream_end(kind, text)
    else:
        assert not stream, f"{kind} {fault}: a streamed request answered 200 without a stream"
        assert isinstance(json.loads(text), dict)
    return kind, fault, response.status_code, response.headers.get("x-request-id", "")


async def run_all(url: str, sk: str, faults: list[str | None]) -> list[tuple]:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        gate = asyncio.Semaphore(32)

        async def bounded(kind, fault):
            async with gate:
                return await one(client, kind, fault, sk)

        return await asyncio.gather(*(bounded(kind, fault) for fault in faults for kind in KINDS))


def ledger_view(gw, key: dict) -> tuple[dict, dict]:
    usage = httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}, timeout=30)
    assert usage.status_code == 200, usage.text
    records = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"])
    assert records.status_code == 200, records.text
    return usage.json(), records.json()["data"]["total"]


def check_ledger(gw, key: dict, requests: int) -> dict:
    usage, total = ledger_view(gw, key)
    assert all(b["reserved"] == 0 for b in usage["budgets"]) and usage["budget"]["reserved"] == 0, usage
    assert total["requests"] == requests
    assert usage["budget"]["spent_nanos"] == total["spentNanos"]
    return total


def db_rows(db, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def faulty_upstream(tmp_path):
    port = free_port()
    proc = Process([sys.executable, "-m", "tests.fakes.faulty_upstream", "--port", str(port)],
                   f"http://127.0.0.1:{port}", tmp_path / f"faulty-{port}.log").start("/v1/models")
    yield proc
    proc.stop()


def test_every_fault_through_every_endpoint_ends_settled_and_the_ledger_whole(tmp_path, faulty_upstream,
                                                                                gateway_factory):
    gw = gateway_factory(hostile_config(faulty_upstream.url))
    key, other = gw.key(plan="big", name="hostile"), gw.key(plan="big", name="bystander")
    faults: list[str | None] = [None, *FAULTS]
    answers = asyncio.run(run_all(gw.url, key["sk"], faults))
    assert len(answers) == len(faults) * len(KINDS)
    assert gw.proc.poll() is None, "the gateway died"
    # Well-formed answers and believable usage pass as they are.
    assert all(status == 200 for kind, fault, status, _ in answers if fault is None or fault in ABSURD_USAGE)

    total = check_ledger(gw, key, len(answers))
    # Another account is served as ever: nothing the hostile answers left blocks the ledger.
    others = asyncio.run(run_all(gw.url, other["sk"], [None]))
    assert [status for *_, status, _ in others] == [200] * len(KINDS)
    check_ledger(gw, other, len(KINDS))

    db = tmp_path / "tollgate.db"
    served = httpx.get(faulty_upstream.url + "/_served", timeout=30).json()
    assert all(times == 1 for _, times in served.values()), "a request reached the upstream twice"
    rows = db_rows(db, "SELECT request_id, status, input_tokens, output_tokens, cost, estimated, error"
                       " FROM usage_records")
    assert len(rows) == len(answers) + len(KINDS)
    by_id = {}
    for request_id, status, tokens_in, tokens_out, cost, estimated, error in rows:
        by_id[request_id] = (status, estimated, error)
        assert 0 <= tokens_in <= CEILING and 0 <= tokens_out <= CEILING, (request_id, tokens_in, tokens_out)
        assert 0 <= cost <= CEILING * IN + CEILING * OUT
    flagged = 0
    for kind, fault, status, request_id in answers:
        if fault in ABSURD_USAGE and fault not in BELIEVABLE and status == 200:
            record_status, estimated, error = by_id[request_id]
            assert estimated == 1 and "upstream usage not believed" in error, (kind, fault, error)
            flagged += 1
    assert flagged >= (len(ABSURD_USAGE) - len(BELIEVABLE)) * (len(KINDS) - 1)
    assert db_rows(db, "SELECT count(*) FROM rejected_records") == [(0,)]

    # A clean stop, and a start on the same database: the same totals, nothing held.
    assert gw.stop() in (0, -15)
    assert "shut down cleanly" in gw.log.read_text()
    gw.start("/health")
    again = check_ledger(gw, key, len(answers))
    assert again["spentNanos"] == total["spentNanos"]
