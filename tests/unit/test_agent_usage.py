"""Reading GET /v1/usage and the budget headers: both envelopes, exact money."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tollgate.agent import UsageError, parse_usage
from tollgate.agent.timefmt import format_instant, parse_instant, parse_retry_after
from tollgate.agent.usage import budget_from_headers, usage_url, usd_nanos

BODY = ('{"budget": {"spent": 0.07, "limit": 0.14, "remaining": 0.07, "duration": "5h", '
        '"resets_at": "2026-11-29T15:00:00.000Z"}, "rate_limits": {"rpm": 60, "tpm": 3333}, '
        '"plan": {"slug": "standard", "status": "active", "expires_at": "2026-12-29T00:00:00Z"}, '
        '"credits": {"balance": 25.1}, "key": {"name": "bot", "type": "subscription", '
        '"created_at": "2026-11-01T00:00:00Z"}}')


def test_bare_and_enveloped_answers_read_the_same():
    bare = parse_usage(BODY)
    wrapped = parse_usage('{"success": true, "data": ' + BODY + "}")
    assert bare == wrapped
    assert bare.limit_nanos == 140_000_000 and bare.spent_nanos == 70_000_000 and bare.remaining_nanos == 70_000_000
    assert bare.resets_at == datetime(2026, 11, 29, 15, tzinfo=timezone.utc)
    assert bare.duration == "5h" and bare.plan_slug == "standard" and bare.plan_status == "active"
    assert bare.credits_nanos == 25_100_000_000 and bare.key_type == "subscription"


def test_already_parsed_floats_are_read_from_their_shortest_repr():
    parsed = json.loads(BODY)  # floats
    assert parse_usage(parsed).limit_nanos == 140_000_000
    assert parse_usage({"success": True, "data": parsed}).remaining_nanos == 70_000_000


def test_remaining_is_derived_when_missing_and_null_limits_stay_unknown():
    status = parse_usage({"budget": {"spent": "0.1", "limit": "0.42"}})
    assert status.remaining_nanos == 320_000_000
    credit = parse_usage({"budget": {"spent": 0, "limit": None}, "plan": {"slug": None}, "key": {"type": "credit"}})
    assert credit.limit_nanos is None and credit.remaining_nanos is None and credit.key_type == "credit"


@pytest.mark.parametrize("body", ["not json", "[1, 2]", b"\xff\xfe"])
def test_unreadable_answers_raise_usage_error(body):
    with pytest.raises(UsageError):
        parse_usage(body)


def test_budget_headers():
    now = datetime(2026, 11, 29, 12, tzinfo=timezone.utc).timestamp()
    status = budget_from_headers({"X-Budget-Limit": "0.14", "x-budget-remaining": "0.000000001",
                                  "x-budget-reset": "2026-11-29T15:00:00Z", "x-request-cost": "0.0000123"}, now)
    assert status.limit_nanos == 140_000_000 and status.remaining_nanos == 1 and status.cost_nanos == 12_300
    assert status.resets_at == datetime(2026, 11, 29, 15, tzinfo=timezone.utc)
    assert status.is_current(now) and not status.is_current(now + 3 * 3600)
    assert budget_from_headers({"content-type": "application/json"}) is None
    relative = budget_from_headers({"x-budget-remaining": "1", "x-budget-reset": "30"}, now)
    assert relative.resets_at.timestamp() == now + 30
    epoch = budget_from_headers({"x-budget-remaining": "1", "x-budget-reset": str(int(now + 60))}, now)
    assert epoch.resets_at.timestamp() == now + 60


def test_usage_url_accepts_base_urls_with_and_without_v1():
    assert usage_url("http://gw:8080/v1") == "http://gw:8080/v1/usage"
    assert usage_url("http://gw:8080/v1/") == "http://gw:8080/v1/usage"
    assert usage_url("http://gw:8080") == "http://gw:8080/v1/usage"


@given(st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False, allow_infinity=False))
def test_dollars_round_trip_exactly_as_nanos(amount):
    assert usd_nanos(str(amount)) == int(amount * 1_000_000_000)
    assert usd_nanos(json.loads(f'{{"v": {amount}}}')["v"]) == usd_nanos(float(str(amount)))


def test_sub_nano_amounts_round_up_and_junk_is_unknown():
    assert usd_nanos("0.0000000001") == 1
    assert usd_nanos("abc") is None and usd_nanos(True) is None and usd_nanos("NaN") is None


def test_time_helpers():
    moment = parse_instant("2026-11-29T15:00:00.250Z")
    assert format_instant(moment) == "2026-11-29T15:00:00.250Z"
    assert parse_instant("2026-11-29T15:00:00") == datetime(2026, 11, 29, 15, tzinfo=timezone.utc)
    assert parse_instant("garbage") is None and parse_instant(5) is None
    assert parse_retry_after("12", 0) == 12 and parse_retry_after("-3", 0) == 0
    assert parse_retry_after("soon", 0) is None and parse_retry_after(None, 0) is None
    assert parse_retry_after("inf", 0) is None
