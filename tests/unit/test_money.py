from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollgate.domain.money import (
    MoneyError,
    affordable_tokens,
    format_usd,
    request_cost,
    token_cost,
    usd_from_json,
    usd_to_nanos,
)


def test_dollars_become_exact_nanos():
    assert usd_to_nanos("0.14") == 140_000_000
    assert usd_to_nanos(20) == 20_000_000_000
    assert usd_to_nanos(Decimal("0.000000001")) == 1
    assert usd_from_json(0.27) == 270_000_000


@pytest.mark.parametrize("value", [0.1, "abc", "1e400000", "0.0000000001", "NaN", True])
def test_inexact_or_malformed_amounts_are_refused(value):
    with pytest.raises(MoneyError):
        usd_to_nanos(value)


def test_format_keeps_cents_and_drops_trailing_zeros():
    assert format_usd(140_000_000) == "0.14"
    assert format_usd(20_000_000_000) == "20.00"
    assert format_usd(35_000) == "0.000035"
    assert format_usd(0) == "0.00"


def test_request_cost_rounds_up_once_over_both_parts():
    # 57 in at $0.15/M + 64 out at $0.60/M = 8550 + 38400 nanos exactly
    assert request_cost(57, 64, 150_000_000, 600_000_000) == 46_950
    # 1 token at $0.0000005/M is a fraction of a nano: rounds up to 1
    assert token_cost(1, 500) == 1
    assert request_cost(0, 0, 10**9, 10**9) == 0


@given(st.integers(0, 10**7), st.integers(1, 10**12), st.integers(0, 10**12))
def test_affordable_tokens_is_the_largest_that_fits(budget, price, _):
    n = affordable_tokens(budget, price)
    assert token_cost(n, price) <= budget
    assert token_cost(n + 1, price) > budget
