"""The toolkit's own nano-dollar helpers: exact, rounding up, and in step with the gateway's."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tollgate.agent.money import NANOS_PER_USD, request_cost, setting_nanos, usd_nanos

tokens = st.integers(min_value=0, max_value=10_000_000)
prices = st.integers(min_value=0, max_value=10**12)  # nano-dollars per million tokens: up to $1,000 / Mtok


@given(tokens, tokens, prices, prices)
def test_request_cost_is_the_exact_cost_rounded_up_once(in_tok, out_tok, in_price, out_price):
    exact = Decimal(in_tok * in_price + out_tok * out_price) / 1_000_000
    cost = request_cost(in_tok, out_tok, in_price, out_price)
    assert isinstance(cost, int)
    assert cost - 1 < exact <= cost


@given(tokens, tokens, prices, prices)
def test_request_cost_agrees_with_the_gateway(in_tok, out_tok, in_price, out_price):
    gateway = pytest.importorskip("tollgate.domain.money")  # absent where the toolkit is installed alone
    assert request_cost(in_tok, out_tok, in_price, out_price) == \
        gateway.request_cost(in_tok, out_tok, in_price, out_price)
    assert NANOS_PER_USD == gateway.NANOS_PER_USD


def test_dollar_settings_refuse_floats_and_negatives():
    assert setting_nanos("0.25", "floor") == 250_000_000
    assert setting_nanos(Decimal("1.000000001"), "floor") == NANOS_PER_USD + 1
    assert setting_nanos(None, "floor") is None
    with pytest.raises(TypeError, match="floor"):
        setting_nanos(0.25, "floor")  # type: ignore[arg-type]
    for bad in ("-1", "abc", "NaN"):
        with pytest.raises(ValueError, match="floor"):
            setting_nanos(bad, "floor")


def test_wire_amounts_are_read_leniently_and_never_under_reported():
    assert usd_nanos(0.1) == 100_000_000  # the float's shortest repr is the literal the server wrote
    assert usd_nanos("0.0000000001") == 1
    assert usd_nanos(" 2 ") == 2 * NANOS_PER_USD
    assert usd_nanos("junk") is None and usd_nanos(True) is None and usd_nanos("Infinity") is None
