"""Prices as providers charge them, end to end: a real upstream reports cache hits and writes, the real
gateway bills each request exactly by the price formula, streamed and not, and returns the rest of
the reservation; a prompt crosses into the long-context tier exactly above its threshold.

The fake upstream counts a word as a token (a chat prompt is its words + 4 per message + 3), so
every expected charge here is worked out from the request alone, with the formula written out.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction

import httpx
import pytest

USD = 1_000_000_000
# "cachey": $1 in, $2 out, hits $0.25, writes $1.25; above 300 prompt tokens $2 / $3 / $0.50 / $2.50.
BASE = {"in": USD, "out": 2 * USD, "cached": USD // 4, "write": 5 * USD // 4}
TIER = {"in": 2 * USD, "out": 3 * USD, "cached": USD // 2, "write": 5 * USD // 2}
THRESHOLD = 300
# "hits-only": DeepSeek-like, a quarter of the input price for a hit, nothing extra to write.
HITS_ONLY = {"in": USD, "out": 2 * USD, "cached": USD // 4, "write": USD}


def cache_config(upstream_url: str) -> dict:
    return {
        "upstreams": [{"name": "fake", "base_url": upstream_url + "/v1", "timeout": 30}],
        "models": [
            {"id": "cachey", "upstream": "fake", "input_per_mtok": "1", "output_per_mtok": "2",
             "cached_input_per_mtok": "0.25", "cache_write_per_mtok": "1.25", "context": 100_000, "max_output": 512,
             "tiers": [{"above_tokens": THRESHOLD, "input_per_mtok": "2", "output_per_mtok": "3",
                        "cached_input_per_mtok": "0.50", "cache_write_per_mtok": "2.50"}]},
            {"id": "hits-only", "upstream": "fake", "input_per_mtok": "1", "output_per_mtok": "2",
             "cached_input_per_mtok": "0.25", "context": 100_000, "max_output": 512},
        ],
        "plans": [{"slug": "roomy", "window": "5h", "budget_per_window": "10", "rpm": 1_000_000,
                   "tpm": 1_000_000_000}],
    }


@pytest.fixture(scope="module")
def cache_gateway(tmp_path_factory):
    from tests.support.processes import Gateway, start_upstream

    tmp = tmp_path_factory.mktemp("cache-pricing")
    upstream = start_upstream(tmp, "cachey")
    gw = Gateway(tmp, cache_config(upstream.url))
    gw.start("/health")
    yield gw
    gw.stop()
    upstream.stop()


def formula(rates: dict, prompt: int, cached: int, write: int, completion: int) -> int:
    """Each part at its rate (nano-dollars per million tokens), summed exactly, rounded up to a nano."""
    nanos = Fraction((prompt - cached - write) * rates["in"] + cached * rates["cached"] + write * rates["write"]
                     + completion * rates["out"], 1_000_000)
    return math.ceil(nanos)


def prompt_of(total_tokens: int, directives: str) -> str:
    """A one-message chat prompt the fake upstream counts as exactly `total_tokens` tokens."""
    words = total_tokens - 4 - 3 - len(directives.split())
    assert words > 0
    return " ".join(["word"] * words) + " " + directives


def ask(gw, key: dict, model: str, content: str, stream: bool) -> tuple[int, dict]:
    """(the charge the gateway reports, the usage the client was shown) for one request."""
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 64}
    headers = {"Authorization": f"Bearer {key['sk']}"}
    url = gw.url + "/v1/chat/completions"
    if not stream:
        r = httpx.post(url, json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return int(r.headers["x-request-cost-nanos"]), r.json()["usage"]
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    last = None
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                last = json.loads(line[6:])
    assert last is not None and last["choices"] == []
    return last["usage"]["cost_nanos"], last["usage"]


def settled(gw, key: dict) -> dict:
    return httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"}).json()


CASES = [
    # (model, rates, prompt tokens, directives, cached, written, completion)
    ("cachey", BASE, 200, "[[cached:150]] [[cache-write:30]] [[reply:10]]", 150, 30, 10),
    ("cachey", BASE, 120, "[[cached:100]] [[cache-write:20]] [[reply:7]] [[cache-style:anthropic]]", 100, 20, 7),
    ("cachey", BASE, 90, "[[cache-write:90]] [[reply:3]]", 0, 90, 3),  # the first call: all written, none hit
    ("hits-only", HITS_ONLY, 250, "[[cached:90%]] [[reply:12]] [[cache-style:deepseek]]", 225, 0, 12),
    ("hits-only", HITS_ONLY, 250, "[[cached:200]] [[reply:12]]", 200, 0, 12),
    ("hits-only", HITS_ONLY, 40, "[[reply:5]]", 0, 0, 5),  # no cache reported: the plain price
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_each_request_is_billed_exactly_by_the_formula(cache_gateway, stream):
    key = cache_gateway.key(plan="roomy", name=f"formula-{stream}")
    total = cached_total = saved_total = 0
    for model, rates, prompt, directives, cached, written, completion in CASES:
        cost, usage = ask(cache_gateway, key, model, prompt_of(prompt, directives), stream)
        expected = formula(rates, prompt, cached, written, completion)
        assert cost == expected, (model, directives, usage)
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)
        total += expected
        cached_total += cached
        saved_total += formula(rates | {"cached": rates["in"], "write": rates["in"]}, prompt, 0, 0, completion) - expected
    view = settled(cache_gateway, key)
    assert view["budget"]["spent_nanos"] == total and view["budget"]["reserved"] == 0  # the rest was returned
    caching = view["caching"]
    assert (caching["cached_tokens"], caching["saved_nanos"]) == (cached_total, saved_total)
    assert caching["input_tokens"] == sum(c[2] for c in CASES)
    report = cache_gateway.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    assert (report["spentNanos"], report["cachedTokens"], report["cacheSavedNanos"]) == (
        total, cached_total, saved_total)
    assert Decimal(report["cacheSaved"]) * USD == saved_total  # the same figure as an exact decimal string


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_long_prompt_crosses_into_the_higher_tier_exactly_above_its_threshold(cache_gateway, stream):
    key = cache_gateway.key(plan="roomy", name=f"tier-{stream}")
    charges = []
    for prompt in (THRESHOLD - 1, THRESHOLD, THRESHOLD + 1):
        cost, usage = ask(cache_gateway, key, "cachey", prompt_of(prompt, "[[cached:200]] [[reply:4]]"), stream)
        assert usage["prompt_tokens"] == prompt
        charges.append(cost)
    assert charges[0] == formula(BASE, THRESHOLD - 1, 200, 0, 4)
    assert charges[1] == formula(BASE, THRESHOLD, 200, 0, 4)  # at the threshold: still the base price
    assert charges[2] == formula(TIER, THRESHOLD + 1, 200, 0, 4)  # one token more: the whole request at the tier
    assert charges[2] - charges[1] > (charges[1] - charges[0]) * 10
    view = settled(cache_gateway, key)
    assert view["budget"]["spent_nanos"] == sum(charges) and view["budget"]["reserved"] == 0


def test_cache_parts_that_do_not_add_up_are_billed_at_the_input_price(cache_gateway):
    """The upstream's word is checked: hits and writes above the prompt are not believed (the whole prompt
    at the input price, within the reservation)."""
    key = cache_gateway.key(plan="roomy", name="absurd")
    cost, _ = ask(cache_gateway, key, "cachey", prompt_of(100, "[[cached:80]] [[cache-write:40]] [[reply:2]]"), False)
    assert cost == formula(BASE, 100, 0, 0, 2)
    assert settled(cache_gateway, key)["caching"]["cached_tokens"] == 0


def test_models_list_the_cache_prices_and_tiers(cache_gateway):
    key = cache_gateway.key(plan="roomy", name="models")
    r = httpx.get(cache_gateway.url + "/v1/models/cachey", headers={"Authorization": f"Bearer {key['sk']}"})
    pricing = r.json()["pricing"]
    assert (pricing["input_per_mtok"], pricing["cached_input_per_mtok"], pricing["cache_write_per_mtok"]) == (
        1.0, 0.25, 1.25)
    assert pricing["tiers"] == [{"above_tokens": THRESHOLD, "input_per_mtok": 2.0, "output_per_mtok": 3.0,
                                 "cached_input_per_mtok": 0.5, "cache_write_per_mtok": 2.5}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_anthropic_api_shows_cache_reads_and_writes_as_anthropic_clients_read_them(cache_gateway, stream):
    """The official SDK sees the billed cache parts as `cache_read_input_tokens` / `cache_creation_input_tokens`
    and the rest of the prompt as `input_tokens` (Anthropic's meaning: the prompt is the sum of the three,
    docs/pricing.md), whatever style the upstream reported in."""
    import anthropic

    key = cache_gateway.key(plan="roomy", name=f"anthropic-{stream}")
    client = anthropic.Anthropic(base_url=cache_gateway.url + "/anthropic", api_key=key["sk"], max_retries=0)
    cases = CASES[:4] + [("cachey", BASE, 100, "[[cached:80]] [[cache-write:40]] [[reply:2]]", 0, 0, 2)]  # not believed
    total = 0
    for model, rates, prompt, directives, cached, written, completion in cases:
        messages = [{"role": "user", "content": prompt_of(prompt, directives)}]
        if stream:
            with client.messages.stream(model=model, max_tokens=64, messages=messages) as s:
                message = s.get_final_message()
        else:
            message = client.messages.create(model=model, max_tokens=64, messages=messages)
        u = message.usage
        assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens, u.output_tokens) == (
            prompt - cached - written, cached, written, completion), directives
        total += formula(rates, prompt, cached, written, completion)
    assert settled(cache_gateway, key)["budget"]["spent_nanos"] == total
