"""The management and operator planes' one style (`tollgate.http.style`), without a server: names, money, the
old names beside the new ones for one release, and the request side's renames and conflicts.
Over HTTP against the real gateway: tests/integration/test_api_style.py."""

from __future__ import annotations

import orjson
import pytest

from tollgate.http.errors import APIError
from tollgate.http.request import Request
from tollgate.http.style import DEPRECATION_HEADERS, Style, camel, envelope, money, render


def request() -> Request:
    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    return Request({"method": "POST", "path": "/admin/plans", "headers": []}, receive)


def wire(payload) -> dict:
    return orjson.loads(orjson.dumps(payload))


def test_names_become_camel_case_and_money_a_string_beside_its_nanos():
    assert [camel(n) for n in ("budget_per_window", "id", "previous_secret_valid_until", "hasMore")] == \
        ["budgetPerWindow", "id", "previousSecretValidUntil", "hasMore"]
    view = {"id": "p", "price_monthly": money(19_990_000_000), "budget": {"limit": money(50_000_000), "window": "1h"},
            "credits_low": money(None), "spent_nanos": 7, "spent": money(7)}
    data, wrote_old = render(view, old_names=False)
    assert wire(data) == {"id": "p", "priceMonthly": "19.99", "priceMonthlyNanos": 19_990_000_000,
                          "budget": {"limit": "0.05", "limitNanos": 50_000_000, "window": "1h"},
                          "creditsLow": None, "creditsLowNanos": None, "spentNanos": 7, "spent": "0.000000007"}
    assert wrote_old is False


def test_old_names_keep_their_old_values_beside_the_new_ones():
    view = {"has_more": False, "data": [{"credits_granted": money(12_500_000_000), "amount": money(250_000_000),
                                         "subscriptions": [{"account_id": "a"}]}]}
    data, wrote_old = render(view)
    assert wrote_old is True
    assert wire(data) == {
        "hasMore": False, "has_more": False,
        "data": [{"creditsGranted": "12.50", "creditsGrantedNanos": 12_500_000_000, "credits_granted": 12.5,
                  "amount": "0.25", "amountNanos": 250_000_000,
                  "subscriptions": [{"accountId": "a", "account_id": "a"}]}]}
    assert b'"credits_granted":12.50' in orjson.dumps(data)  # the exact figure, as before


def test_metadata_is_the_clients_own_and_written_as_given():
    view = {"metadata": {"snake_name": 1, "camelName": 2}, "end_user": "alice"}
    data, _ = render(view)
    assert data == {"metadata": {"snake_name": 1, "camelName": 2}, "endUser": "alice", "end_user": "alice"}
    data, wrote_old = render({"metadata": {"snake_name": 1}})
    assert data == {"metadata": {"snake_name": 1}} and wrote_old is False


def test_a_request_may_use_an_old_name_once_and_not_against_the_new_one():
    style = Style()
    r = request()
    assert style.fields(r, {"budgetPerWindow": "1"}) == {"budgetPerWindow": "1"}
    assert "tollgate.old_field_names" not in r.scope
    assert style.fields(r, {"slug": "x", "budget_per_window": "1", "period_days": 3}) == \
        {"slug": "x", "budgetPerWindow": "1", "periodDays": 3}
    assert r.scope["tollgate.old_field_names"] is True
    assert style.fields(request(), {"graceSeconds": 5, "grace_seconds": 5}) == {"graceSeconds": 5}
    with pytest.raises(APIError) as info:
        style.fields(request(), {"graceSeconds": 5, "grace_seconds": 6})
    assert (info.value.status, info.value.param, info.value.headers) == (400, "graceSeconds", DEPRECATION_HEADERS)
    with pytest.raises(APIError) as info:
        Style(old_names=False).fields(request(), {"price_monthly": "1"})
    assert info.value.param == "priceMonthly" and info.value.message.startswith("price_monthly was renamed")


def test_the_headers_and_the_envelope():
    assert dict(DEPRECATION_HEADERS) == {b"deprecation": b"@1796515200", b"sunset": b"Sun, 06 Jun 2027 00:00:00 GMT",
                                         b"link": b'</docs/api.md#deprecations>; rel="deprecation"'}
    body = orjson.loads(envelope(APIError(400, "invalid_request", "period_days must be between 1 and 3650 days",
                                          param="period_days")))
    assert body == {"success": False, "error": {"code": "invalid_request", "param": "periodDays",
                                                "message": "periodDays must be between 1 and 3650 days"}}
