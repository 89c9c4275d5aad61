"""An unreachable shared ledger (or database) is a 503 with a short Retry-After, in each API's shape (SPEC section 6)."""

from __future__ import annotations

import orjson

from tollgate.domain.refusals import LedgerBusy, LedgerUnavailable, StoreUnavailable
from tollgate.http.refusals import api_error
from tollgate.proxy.traffic import refusal_reason


def test_an_unreachable_ledger_is_a_retriable_503_in_each_shape() -> None:
    refusal = LedgerUnavailable(0.4)
    assert isinstance(refusal, LedgerBusy)  # every path that handles a ledger that cannot admit handles it
    error = api_error(refusal)
    assert (error.status, error.code) == (503, "ledger_unavailable")
    assert dict(error.headers)[b"retry-after"] == b"1"  # rounded up to a whole second, at least one
    assert api_error(LedgerUnavailable(2.5)).headers == [(b"retry-after", b"3")]
    openai = orjson.loads(error.openai_body())["error"]
    anthropic = orjson.loads(error.anthropic_body())
    assert (openai["type"], openai["code"]) == ("server_error", "ledger_unavailable")
    assert (anthropic["type"], anthropic["error"]["type"]) == ("error", "overloaded_error")
    assert "retry in 1 s" in openai["message"] and "per-process" not in openai["message"]
    assert refusal_reason(refusal) == "ledger_unavailable"
    assert api_error(LedgerBusy(0.4)).code == "ledger_busy"  # the backlog refusal keeps its own code


def test_an_unreachable_database_is_a_retriable_503_with_its_own_code() -> None:
    error = api_error(StoreUnavailable(1.5))
    assert (error.status, error.code) == (503, "store_unavailable")
    assert error.headers == [(b"retry-after", b"2")]
    assert orjson.loads(error.anthropic_body())["error"]["type"] == "overloaded_error"
    assert orjson.loads(error.openai_body())["error"]["code"] == "store_unavailable"
