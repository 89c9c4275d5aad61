"""Live overhead analytics: the resent/new split, its cost, re-pricing and plan fits, on constructed records."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from tollgate.catalog import load_reference_catalog
from tollgate.config.schema import ModelConfig
from tollgate.costlab.live import (
    Price,
    catalog_prices,
    live_overhead,
    served_prices,
    split_conversation,
)
from tollgate.costlab.live_report import live_json, render_live_text
from tollgate.domain.accounts import Plan
from tollgate.domain.pricing import TokenUsage, cache_saving, charge
from tollgate.domain.usage import UsageRecord

NANOS = 1_000_000_000
# "chat" costs $1 / $2 per million: 1000 and 2000 nano-dollars a token, so costs below are exact by hand.
CHAT = ModelConfig("chat", ("u",), "up", 1 * NANOS, 2 * NANOS)
BIG = ModelConfig("big", ("u",), "up-big", 3 * NANOS, 15 * NANOS)
EMBED = ModelConfig("embed", ("u",), "up-e", NANOS // 10, 0, capabilities=("embeddings",))
PRICES = served_prices([CHAT, BIG, EMBED])
HOUR = 3600
T0 = 1_800_000_000 - 1_800_000_000 % 86400 + 5 * HOUR  # 2027-01-15T05:00:00Z, when a UTC-aligned 5 h window starts


class Records:
    """Builds usage records the way the gateway writes them, charging the model's list price."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []
        self.t = float(T0)

    def add(self, inp: int, out: int, session: str | None = "s1", key: str = "k1", status: int = 200,
            model: str = "chat", endpoint: str = "chat", at: float | None = None, cost: int | None = None,
            account: str = "acct", cached: int | None = None, written: int | None = None,
            saved: int | None = None) -> UsageRecord:
        self.t = self.t + 1 if at is None else at
        price = {"chat": (1000, 2000), "big": (3000, 15000), "embed": (100, 0)}.get(model, (5000, 5000))
        r = UsageRecord(
            request_id=f"req_{len(self.records)}", created_at=self.t, account_id=account, key_id=key,
            subscription_id="sub", model=model, upstream_model=None, route=None, endpoint=endpoint, status=status,
            input_tokens=inp, output_tokens=out, cost=inp * price[0] + out * price[1] if cost is None else cost,
            latency_ms=1.0, estimated=False, stream=False, session=session, cached_prefix_tokens=cached,
            cache_write_tokens=written, cache_saved=saved,
        )
        self.records.append(r)
        return r


def report(records, prices=PRICES, plans=(), **kw):
    return live_overhead(records, prices, plans, "acct", **kw)


def resent_of(records) -> list[int]:
    return [resent for _, resent, _ in split_conversation(records)]


# -- the resent/new split ----------------------------------------------------------------

def test_a_growing_conversation_resends_the_previous_prompt_and_answer():
    rng = random.Random(7)
    for _ in range(200):
        log = Records()
        prompt, prompts, outs = rng.randint(5, 500), [], []
        for _ in range(rng.randint(1, 12)):
            out = rng.randint(0, 300)
            log.add(prompt, out)
            prompts.append(prompt)
            outs.append(out)
            prompt = prompt + out + rng.randint(0, 400)  # history + answer + the new tool result
        expected = [0] + [min(prompts[i], prompts[i - 1] + outs[i - 1]) for i in range(1, len(prompts))]
        assert resent_of(log.records) == expected


def test_going_back_resends_only_the_prefix_the_branch_still_shares():
    log = Records()
    log.add(100, 10)   # 1: path 0, 100, 110
    log.add(130, 20)   # 2: +20 new; path .., 130, 150
    log.add(170, 5)    # 3: path .., 170, 175
    log.add(140, 8)    # 4: went back (140 < 175): the longest earlier point that fits is step 2's prompt
    log.add(160, 4)    # 5: continues the new branch: 140 + 8 = 148 resent
    log.add(170, 5)    # 6: the old branch's 170 is gone from the path: 160 + 4 = 164, not 170
    log.add(100, 3)    # 7: a restart from the opening prompt: all of it resent
    assert resent_of(log.records) == [0, 110, 150, 130, 148, 164, 100]
    assert [b for _, _, b in split_conversation(log.records)] == [False, False, False, True, False, False, True]
    steps = report(log.records).total.sessions[0].steps
    assert [s.new_tokens for s in steps] == [100, 20, 20, 10, 12, 6, 0]


def test_a_retry_of_the_same_prompt_is_all_resent():
    log = Records()
    log.add(200, 50)
    log.add(300, 40)
    log.add(300, 40)  # regenerate: the same prompt again
    log.add(360, 9)   # continues after the second answer
    assert resent_of(log.records) == [0, 250, 300, 340]


def test_refused_and_unanswered_requests_keep_the_chain():
    log = Records()
    log.add(100, 10)
    log.add(0, 0, status=429)          # refused before any upstream: sends and leaves nothing
    log.add(150, 7, status=499)        # client gone: its prompt was sent, its partial answer was not kept
    log.add(150, 30)                   # the retry resends that prompt
    log.add(200, 1)
    assert resent_of(log.records) == [0, 0, 110, 150, 180]
    t = report(log.records).total.tally
    assert (t.requests, t.failed, t.resent_tokens) == (5, 2, 440)


def test_steps_follow_admission_time_not_storage_order():
    log = Records()
    a = log.add(100, 10, at=T0 + 10)
    b = log.add(120, 10, at=T0 + 20)
    c = log.add(140, 10, at=T0 + 30)
    assert resent_of([c, a, b]) == [0, 110, 130]


def test_the_same_opening_on_two_keys_is_two_conversations():
    log = Records()
    log.add(100, 10, key="k1")
    log.add(100, 10, key="k2")
    log.add(120, 10, key="k1")
    log.add(120, 10, key="k2")
    rep = report(log.records)
    assert [(s.key_id, s.tally.resent_tokens, s.branches) for s in rep.total.sessions] == [("k1", 110, 0), ("k2", 110, 0)]


# -- money -------------------------------------------------------------------------------

def test_resent_context_is_priced_at_the_input_price_and_never_above_the_charge():
    log = Records()
    log.add(100, 10)
    log.add(150, 10)                   # 110 resent: 110 x 1000 nanos
    log.add(200, 5, cost=50_000)       # charged less than list (capped at its reservation): 160 resent capped
    log.add(3, 1, session="s2", model="big")
    log.add(7, 1, session="s2", model="big")  # 4 resent at $3/M = 12,000 nanos
    rep = report(log.records)
    t = rep.total.tally
    assert t.cost == sum(r.cost for r in log.records)
    assert t.resent_cost == 110_000 + 50_000 + 12_000
    assert t.resent_cost_share == Decimal(t.resent_cost) / Decimal(t.cost)


def test_resent_cost_rounds_up_per_request_like_a_charge():
    odd = ModelConfig("odd", ("u",), "up", 333, 1000, cached_input_per_mtok=100)  # $0.000000333 per million input
    log = Records()
    log.add(10, 1, model="odd", cost=1)
    log.add(20, 1, model="odd", cost=1)
    log.add(30, 1, model="odd", cost=1)
    rep = report(log.records, served_prices([odd]))
    assert rep.total.tally.resent_cost == 2  # two steps with resent context, each rounds up to 1 nano
    assert rep.total.tally.resent_cached_cost == 2  # as cache hits too (11 x 100 and 21 x 100 millionths)


# "cachy" prices a cache hit at a quarter of its $1 input price (250 nanos a token), DeepSeek-like.
CACHY = ModelConfig("cachy", ("u",), "up-c", 1 * NANOS, 2 * NANOS, cached_input_per_mtok=NANOS // 4)


def cached_step(log: Records, inp: int, out: int, cached: int, written: int = 0, session: str = "c") -> UsageRecord:
    """A cachy record as the flow settles it: charged by the price formula, its saving kept."""
    usage = TokenUsage(inp, out, cached, written)
    return log.add(inp, out, session=session, model="cachy", cached=cached, written=written,
                   cost=charge(CACHY.price, usage), saved=cache_saving(CACHY.price, usage))


def test_served_prices_learn_the_cache_hit_price_from_the_model_config():
    cachy, chat = served_prices([CACHY, CHAT])
    assert (cachy.cached_input_per_mtok, cachy.hit_per_mtok) == (250_000_000, 250_000_000)
    assert (chat.cached_input_per_mtok, chat.hit_per_mtok) == (None, NANOS)
    deepseek = next(p for p in catalog_prices(load_reference_catalog())[0] if p.model == "deepseek-v3.2")
    assert deepseek.cached_input_per_mtok == 70_000_000


def test_resent_context_is_priced_with_and_without_caching_beside_what_caching_saved():
    log = Records()
    a = cached_step(log, 100, 10, 0, written=100)  # the first call: all written (no write premium: input price)
    b = cached_step(log, 150, 20, 100)  # 110 resent; 100 were hits
    c = cached_step(log, 200, 5, 150)   # 170 resent; 150 were hits
    assert (a.cost, b.cost, c.cost) == (120_000, 50_000 + 25_000 + 40_000, 50_000 + 37_500 + 10_000)
    assert (a.cache_saved, b.cache_saved, c.cache_saved) == (0, 75_000, 112_500)
    log.add(100, 10)                  # a chat conversation: no cache-hit price
    log.add(150, 10)                  # 110 resent: 110,000 either way
    rep = report(log.records, served_prices([CHAT, CACHY]))
    [cachy, chat] = rep.total.sessions
    steps = cachy.steps
    assert [s.resent_cost for s in steps] == [0, 110_000, 97_500]  # the last is capped at its charge
    assert [s.resent_cached_cost for s in steps] == [0, 110 * 250, 170 * 250]
    t = cachy.tally
    assert (t.resent_tokens, t.resent_cost, t.resent_cached_cost, t.cache_priced_resent_tokens) == (
        280, 207_500, 70_000, 280)
    assert (t.cached_tokens, t.cache_write_tokens, t.cache_saved) == (250, 100, 187_500)
    assert (chat.tally.resent_cost, chat.tally.resent_cached_cost, chat.tally.cache_priced_resent_tokens) == (
        110_000, 110_000, 0)
    total = rep.total.tally
    assert (total.resent_cost, total.resent_cached_cost, total.resent_cache_saving) == (317_500, 180_000, 137_500)
    assert (total.cached_tokens, total.cache_saved) == (250, 187_500)
    # every generation request again at each model's prices: the resent part as hits where a model has a hit price
    by = {r.price.model: r for r in rep.total.repriced}
    assert (by["cachy"].resent_cost, by["cachy"].resent_cached_cost) == (390_000, 390 * 250)
    assert (by["chat"].resent_cost, by["chat"].resent_cached_cost) == (390_000, None)


def test_a_negative_saving_and_unpriced_models_stay_out_of_the_hit_figures():
    log = Records()
    log.add(100, 10, session="x", model="gone", cached=0, written=100, saved=-25_000)  # a write premium's cost
    log.add(150, 10, session="x", model="gone", cached=100, saved=40_000)
    t = report(log.records).total.tally
    assert (t.unpriced_resent_tokens, t.resent_cost, t.resent_cached_cost) == (110, 0, 0)
    assert (t.cache_saved, t.cached_tokens, t.cache_write_tokens) == (15_000, 100, 100)


def test_a_model_with_no_known_price_leaves_its_resent_tokens_unpriced():
    log = Records()
    log.add(100, 10, model="gone")
    log.add(150, 10, model="gone")
    rep = report(log.records)
    t = rep.total.tally
    assert (t.resent_tokens, t.resent_cost, t.unpriced_resent_tokens) == (110, 0, 110)
    assert rep.unpriced_models == ("gone",)


def test_the_same_traffic_is_repriced_request_by_request_on_chat_models_only():
    log = Records()
    log.add(100, 10)
    log.add(150, 20)
    log.add(40, 0, session=None, endpoint="embeddings", model="embed")
    half = Price("half", "Half", "catalog", 500_000_000, None)  # no output price: a lower bound
    odd = Price("odd", "Odd", "catalog", 1, 1)
    rep = report(log.records, PRICES + [half, odd])
    by = {r.price.model: r for r in rep.total.repriced}
    assert set(by) == {"chat", "big", "half", "odd"}  # the embedding model serves no chat traffic
    assert by["chat"].cost == 100_000 + 20_000 + 150_000 + 40_000 == rep.total.generation.cost
    assert by["big"].cost == 3 * 250_000 + 15 * 30_000
    assert by["big"].resent_cost == 110 * 3000
    assert by["half"].cost == 50_000 + 75_000 and by["half"].lower_bound
    assert by["odd"].cost == 2  # 110 and 170 millionths of a nano each round up to 1
    assert by["odd"].resent_cost == 1  # only the second request resent anything
    assert [r.price.model for r in rep.total.repriced] == ["odd", "chat", "big", "half"]  # exact, cheapest first
    assert rep.total.generation.requests == 2 and rep.total.no_session.cost == 4_000


def test_repricing_equals_charging_every_request_on_its_own():
    rng = random.Random(11)
    log = Records()
    for _ in range(300):
        log.add(rng.randint(0, 5000), rng.randint(0, 800), session=rng.choice(["a", "b"]))
    prices = [Price(f"p{i}", f"P{i}", "catalog", rng.choice([10**6 * rng.randint(1, 9000), rng.randint(1, 10**10)]),
                    rng.choice([None, 10**6 * rng.randint(1, 9000), rng.randint(1, 10**10)])) for i in range(40)]
    rep = report(log.records, prices)
    steps = {s.record.request_id: s for s in rep.total.steps}
    for r in rep.total.repriced:
        p = r.price
        assert r.cost == sum(p.cost(x.input_tokens, x.output_tokens) for x in log.records)
        want = sum(-(-steps[x.request_id].resent_tokens * p.input_per_mtok // 10**6) for x in log.records)
        assert r.resent_cost == want


def test_catalog_prices_are_its_priced_chat_models():
    catalog = load_reference_catalog()
    priced, unpriced = catalog_prices(catalog)
    assert priced and all(catalog.get(p.model).has("chat") for p in priced)
    assert {p.model for p in priced} | set(unpriced) == {m.id for m in catalog if m.has("chat")}
    assert all(catalog.get(m).input_per_mtok is None for m in unpriced)
    deepseek = next(p for p in priced if p.model == "deepseek-v3.2")
    assert (deepseek.input_per_mtok, deepseek.output_per_mtok) == (270_000_000, 1_100_000_000)
    assert deepseek.cost(1_000_000, 1_000_000) == 1_370_000_000


def test_flat_plans_count_windows_and_side_by_side_subscriptions():
    plan = Plan("p", "P", price_monthly=20 * NANOS, period_days=30, window=5 * HOUR, budget_per_window=100_000,
                rpm=60, tpm=10**6)
    broke = Plan("zero", "Zero", 0, 30, 5 * HOUR, 0, 60, 10**6)
    log = Records()
    log.add(100, 0, at=T0 + 1)                 # 100,000
    log.add(100, 0, at=T0 + 2)                 # 100,000: the first window spends 200,000
    log.add(50, 0, at=T0 + 5 * HOUR + 1)       # the next window: 50,000
    rep = report(log.records, plans=[plan, broke])
    use, zero = rep.total.plans
    assert (use.spend, use.windows_needed, use.peak_spend, use.peak_window_start) == (250_000, 3, 200_000, T0)
    assert use.subscriptions_needed == 2 and use.days_of_windows == Decimal(3) / 5
    assert (zero.windows_needed, zero.subscriptions_needed) == (None, None)
    assert report([], plans=[plan]).total.plans[0].windows_needed == 0


def test_keys_and_sessions_add_up_and_other_accounts_are_refused():
    rng = random.Random(3)
    log = Records()
    for _ in range(60):
        log.add(rng.randint(1, 300), rng.randint(0, 50), session=rng.choice(["a", "b", None]), key=rng.choice("xyz"))
    rep = report(log.records)
    total = rep.total.tally
    keys = [scope.tally for _, scope in rep.keys]
    assert sum(k.cost for k in keys) == total.cost == sum(r.cost for r in log.records)
    assert sum(k.resent_tokens for k in keys) == total.resent_tokens
    assert sum(s.tally.input_tokens for s in rep.total.sessions) + rep.total.no_session.input_tokens == total.input_tokens
    assert [k.cost for k in keys] == sorted((k.cost for k in keys), reverse=True) and len(keys) == 3
    log.add(10, 1, account="other")
    with pytest.raises(ValueError, match="another account"):
        report(log.records)


# -- output ------------------------------------------------------------------------------

def test_json_money_is_exact_and_the_api_shape_is_camel_case():
    log = Records()
    log.add(100, 10)
    log.add(150, 20, cached=100)
    rep = report(log.records, key_names={"k1": "agent"}, since=T0, until=T0 + 60)
    data = live_json(rep, steps=True)
    json.dumps(data)
    total = data["total"]
    assert (total["cost_nanos"], total["cost"]) == (120_000 + 190_000, "0.00031")
    assert (total["resent_tokens"], total["new_tokens"], total["cached_tokens"]) == (110, 140, 100)
    assert total["resent_share"] == "0.4400" and total["sessions"] == 1
    [key] = data["keys"]
    assert (key["key_id"], key["name"]) == ("k1", "agent")
    assert [s["resent_tokens"] for s in key["sessions"][0]["steps"]] == [0, 110]
    api = live_json(rep, camel=True)
    assert api["total"]["costNanos"] == 310_000 and "steps" not in api["keys"][0]["sessions"][0]
    assert api["keys"][0]["comparison"]["models"][0]["inputPerMtokNanos"] == NANOS
    assert (data["since"], data["until"]) == ("2027-01-15T05:00:00Z", "2027-01-15T05:01:00Z")


def test_json_and_text_price_resent_context_with_and_without_caching():
    log = Records()
    cached_step(log, 100, 10, 0, written=100)
    cached_step(log, 150, 20, 100)
    cached_step(log, 200, 5, 150)
    rep = report(log.records, served_prices([CACHY]))
    data = live_json(rep, steps=True)
    total = data["total"]
    assert (total["resent_cost_nanos"], total["resent_cached_cost_nanos"], total["resent_cached_cost"]) == (
        207_500, 70_000, "0.00007")
    assert (total["cache_saved_nanos"], total["cache_saved"]) == (187_500, "0.0001875")
    assert (total["cached_tokens"], total["cache_write_tokens"], total["cache_priced_resent_tokens"]) == (250, 100, 280)
    step = data["keys"][0]["sessions"][0]["steps"][2]
    assert (step["resent_cached_cost_nanos"], step["cached_tokens"], step["cache_saved_nanos"]) == (42_500, 150, 112_500)
    [model] = total["comparison"]["models"]
    assert (model["cached_input_per_mtok_nanos"], model["resent_cached_cost_nanos"]) == (NANOS // 4, 280 * 250)
    api = live_json(rep, camel=True)["total"]
    assert (api["resentCachedCostNanos"], api["cacheSavedNanos"], api["cachePricedResentTokens"]) == (
        70_000, 187_500, 280)
    text = render_live_text(rep)
    assert "resent context would cost $0.00007 ($0.0001375 less)" in text
    assert "250 prompt tokens were cache hits and 100 cache writes; cache pricing saved $0.0001875" in text
    assert "resent if hit" in text and "as cache hits" in text
    log = Records()
    log.add(100, 10)
    log.add(150, 10)
    plain = render_live_text(report(log.records))  # no cache-hit price, no cache reported: no caching lines
    assert "With every resent token" not in plain and "Caching as it was" not in plain


def test_text_report_names_keys_sessions_models_and_plans():
    log = Records()
    log.add(100, 10)
    log.add(150, 20)
    plan = Plan("std", "Std", 20 * NANOS, 30, 5 * HOUR, 140_000_000, 60, 10**6)
    text = render_live_text(report(log.records, plans=[plan], key_names={"k1": "agent"}))
    assert "agent" in text and "s1" in text and "std $20.00/mo" in text
    assert "110 (44.0%) resent" in text
    assert "No usage" in render_live_text(report([]))
