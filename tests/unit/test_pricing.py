"""Prices as providers charge them (domain/pricing.py): every part at its rate, a reservation that is a true bound.

The properties run over random prices (tiers in any order of cost, cache prices above or below
the input price: the pricing module must hold even for prices the config would refuse) and
random usages within the request's bounds, against a formula written out here independently
with exact fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.domain.money import NANOS_PER_USD, request_cost
from tollgate.domain.pricing import Price, Rates, Tier, TokenUsage, cache_saving, charge, output_room, reserve, undiscounted
from tollgate.proxy import plausible
from tollgate.proxy.sse import Reported

USD = NANOS_PER_USD
prices_per_mtok = st.integers(0, 100 * USD)  # up to $100 per million tokens
maybe_price = st.none() | prices_per_mtok
rates = st.builds(Rates, prices_per_mtok, prices_per_mtok, maybe_price, maybe_price)


@st.composite
def model_prices(draw) -> Price:
    thresholds = sorted(set(draw(st.lists(st.integers(1, 2_000_000), max_size=3))))
    return Price(draw(rates), tuple(Tier(above, draw(rates)) for above in thresholds))


@st.composite
def usages(draw, prompt_bound: int, output_cap: int) -> TokenUsage:
    prompt = draw(st.integers(0, prompt_bound))
    cached = draw(st.integers(0, prompt))
    write = draw(st.integers(0, prompt - cached))
    return TokenUsage(prompt, draw(st.integers(0, output_cap)), cached, write)


def formula(price: Price, usage: TokenUsage) -> int:
    """The price formula, written out: the tier the whole prompt is above (the highest threshold below
    it), then each part at its rate in dollars per million tokens, summed exactly, rounded up to a nano."""
    chosen = price.base
    for tier in sorted(price.tiers, key=lambda t: t.above_tokens):
        if usage.prompt > tier.above_tokens:
            chosen = tier.rates
    cached = chosen.input_per_mtok if chosen.cached_input_per_mtok is None else chosen.cached_input_per_mtok
    write = chosen.input_per_mtok if chosen.cache_write_per_mtok is None else chosen.cache_write_per_mtok
    plain = usage.prompt - usage.cached - usage.cache_write
    dollars = (Fraction(plain * chosen.input_per_mtok + usage.cached * cached + usage.cache_write * write
                        + usage.completion * chosen.output_per_mtok, USD) / 1_000_000)
    return math.ceil(dollars * USD)


@settings(max_examples=400, deadline=None)
@given(st.data(), model_prices(), st.integers(0, 3_000_000), st.integers(0, 200_000))
def test_the_charge_is_the_formula_and_never_above_the_reservation(data, price, prompt_bound, output_cap):
    usage = data.draw(usages(prompt_bound, output_cap))
    charged = charge(price, usage)
    assert charged == formula(price, usage)
    assert 0 <= charged <= reserve(price, prompt_bound, output_cap)


@settings(max_examples=300, deadline=None)
@given(st.data(), model_prices(), st.integers(0, 3_000_000), st.integers(0, 200_000), st.integers(0, 10**12))
def test_the_output_allowed_by_a_grant_keeps_every_usage_within_it(data, price, prompt_bound, cap, grant):
    """Admission lowers max_tokens to what the grant pays for (`output_room`): whatever the upstream then
    reports within those bounds is charged no more than the grant; one token more would not have fit."""
    allowed = output_room(price, grant, prompt_bound, cap)
    assert 0 <= allowed <= cap
    if allowed > 0 or reserve(price, prompt_bound, 0) <= grant:
        assert reserve(price, prompt_bound, allowed) <= grant
        usage = data.draw(usages(prompt_bound, allowed))
        assert charge(price, usage) <= grant
    if allowed < cap:
        assert reserve(price, prompt_bound, allowed + 1) > grant


@settings(max_examples=300, deadline=None)
@given(st.data(), model_prices(), st.integers(1, 100_000), st.integers(0, 4096))
def test_reported_usage_once_checked_is_charged_within_the_reservation(data, price, prompt_bound, output):
    """The upstream's word, any JSON at all, through proxy/plausible.py: the parts it keeps add up to at most
    the prompt, and (for a context inside the prompt bound) the charge stays within the reservation."""
    anything = st.none() | st.booleans() | st.integers(-10, 2 * (prompt_bound + output)) | st.text(max_size=3)
    reported = Reported(*(data.draw(anything) for _ in range(4)))
    usage = plausible.from_upstream(reported, plausible.limits(prompt_bound, output, context=prompt_bound))
    parts = usage.parts
    assert 0 <= parts.cached and 0 <= parts.cache_write and parts.cached + parts.cache_write <= parts.prompt
    if parts.prompt <= prompt_bound and parts.completion <= output:
        assert charge(price, parts) <= reserve(price, prompt_bound, output)


def test_a_long_prompt_crosses_into_the_higher_tier_exactly_above_its_threshold():
    price = Price(Rates(3 * USD, 15 * USD), (Tier(200_000, Rates(6 * USD, 22 * USD + USD // 2)),))
    at, above = TokenUsage(200_000, 1000), TokenUsage(200_001, 1000)
    assert charge(price, at) == 600_000_000 + 15_000_000  # 200K in at $3, 1000 out at $15: $0.615
    assert charge(price, above) == 1_200_006_000 + 22_500_000  # the whole request at $6 / $22.50
    assert charge(price, above) == request_cost(200_001, 1000, 6 * USD, 22 * USD + USD // 2)
    # The reservation takes the tier as soon as the prompt bound may reach it, and not before.
    assert reserve(price, 200_000, 1000) == charge(price, at)
    assert reserve(price, 200_001, 1000) == charge(price, above)


def test_cached_and_written_tokens_are_each_billed_at_their_own_rate():
    # Anthropic-style: $3 input, hits $0.30, writes $3.75, output $15.
    price = Price(Rates(3 * USD, 15 * USD, 3 * USD // 10, 3750 * USD // 1000))
    usage = TokenUsage(prompt=10_000, completion=500, cached=8_000, cache_write=1_500)
    # 500 plain at $3 + 8000 at $0.30 + 1500 at $3.75 + 500 out at $15, per million tokens.
    assert charge(price, usage) == 1_500_000 + 2_400_000 + 5_625_000 + 7_500_000
    assert undiscounted(price, usage) == 30_000_000 + 7_500_000
    assert cache_saving(price, usage) == 37_500_000 - 17_025_000
    # The reservation holds every prompt token at the write premium: no split of the prompt costs more.
    assert reserve(price, 10_000, 500) == 37_500_000 + 7_500_000


def test_a_write_premium_with_no_hits_costs_more_than_no_caching_at_all():
    price = Price(Rates(USD, 2 * USD, USD // 10, 2 * USD))
    usage = TokenUsage(prompt=1000, completion=0, cache_write=1000)
    assert charge(price, usage) == 2_000_000 and undiscounted(price, usage) == 1_000_000  # $0.002 against $0.001
    assert cache_saving(price, usage) == -1_000_000


def test_a_flat_price_charges_what_it_always_did():
    price = Price.flat(150_000_000, 600_000_000)
    for usage in (TokenUsage(57, 64), TokenUsage(57, 64, cached=50), TokenUsage(57, 64, cache_write=7)):
        assert charge(price, usage) == request_cost(57, 64, 150_000_000, 600_000_000) == 46_950
        assert cache_saving(price, usage) == 0
    assert not price.has_cache_prices
