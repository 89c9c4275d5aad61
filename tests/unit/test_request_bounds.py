"""Requests within bounds: one output limit per request, counted choices, and values with ceilings."""

from __future__ import annotations

import pytest

from tollgate.config import ConfigError, load_config
from tollgate.domain import bounds
from tollgate.domain.durations import MAX_DURATION, parse_duration
from tollgate.domain.money import NANOS_PER_USD
from tollgate.http import checks
from tollgate.http.errors import APIError
from tollgate.proxy.call import CHAT, COMPLETIONS, EMBEDDINGS, Call
from tests.support.toml import dumps

MESSAGES = [{"role": "user", "content": "hi"}]


def chat_body(**fields) -> dict:
    body = {"model": "m", "messages": MESSAGES, **fields}
    checks.chat(body)
    return body


def completion_body(**fields) -> dict:
    body = {"model": "m", "prompt": "hi", **fields}
    checks.completion(body)
    return body


CAPS = ("max_tokens", "max_completion_tokens", "n_predict", "num_predict", "max_new_tokens")


def caps(body: dict) -> dict:
    return {k: v for k, v in body.items() if k in CAPS}


# -- one output limit -------------------------------------------------------------

@pytest.mark.parametrize(("fields", "expected"), [
    ({}, {}),
    ({"max_tokens": 50}, {"max_tokens": 50}),
    ({"max_completion_tokens": 50}, {"max_completion_tokens": 50}),
    ({"max_tokens": 50, "max_completion_tokens": 70}, {"max_completion_tokens": 50}),
    ({"max_tokens": 90, "max_completion_tokens": 70}, {"max_completion_tokens": 70}),
    ({"max_tokens": None, "max_completion_tokens": 70}, {"max_completion_tokens": 70}),
    ({"n_predict": 30}, {"max_tokens": 30}),
    ({"n_predict": 300, "max_tokens": 40}, {"max_tokens": 40}),
    ({"n_predict": -1, "max_tokens": 40}, {"max_tokens": 40}),  # llama.cpp's "no limit"
    ({"n_predict": -1}, {}),
    ({"num_predict": 20, "max_new_tokens": 25, "max_completion_tokens": 60}, {"max_completion_tokens": 20}),
])
def test_chat_folds_every_output_limit_into_one_field_the_smallest(fields, expected):
    assert caps(chat_body(**fields)) == expected


@pytest.mark.parametrize(("fields", "expected"), [
    ({"max_tokens": 50}, {"max_tokens": 50}),
    ({"max_completion_tokens": 50}, {"max_tokens": 50}),  # /completions knows only max_tokens
    ({"max_tokens": 80, "max_completion_tokens": 50, "n_predict": 60}, {"max_tokens": 50}),
])
def test_completions_keep_only_max_tokens(fields, expected):
    assert caps(completion_body(**fields)) == expected


@pytest.mark.parametrize(("fields", "param"), [
    ({"n_predict": "10"}, "n_predict"),
    ({"n_predict": 1.5}, "n_predict"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"n": 129}, "n"),
    ({"best_of": 0}, "best_of"),
    ({"n": 4, "best_of": 2}, "best_of"),
])
def test_bad_output_fields_are_400s_naming_the_field(fields, param):
    with pytest.raises(APIError) as info:
        chat_body(**fields)
    assert (info.value.status, info.value.param) == (400, param)
    with pytest.raises(APIError) as info:
        completion_body(**fields)
    assert info.value.param == param


def call(endpoint: str, body: dict, **fields) -> Call:
    return Call(endpoint=endpoint, body=body, chain=[], **fields)


def test_best_of_is_counted_as_choices_when_larger_than_n():
    assert call(COMPLETIONS, {"best_of": 5}, choices=2).choices == 5
    assert call(COMPLETIONS, {"best_of": 2}, choices=2).choices == 2
    assert call(CHAT, {"best_of": 3}).choices == 3
    assert call(CHAT, {}, choices=4).choices == 4
    assert call(EMBEDDINGS, {"best_of": 3}).choices == 1


def test_completions_forward_their_limit_as_max_tokens():
    made = call(COMPLETIONS, {"max_tokens": 5}, max_tokens=5, max_tokens_field="max_completion_tokens")
    assert made.max_tokens_field == "max_tokens"
    assert call(CHAT, {}, max_tokens_field="max_completion_tokens").max_tokens_field == "max_completion_tokens"


# -- bounds on what operators and owners set ------------------------------------------------

def test_durations_have_a_ceiling_and_few_digits():
    assert parse_duration("3650d") == MAX_DURATION
    for text in ("3651d", "100000000d", "9" * 5000 + "s"):
        with pytest.raises(ValueError):
            parse_duration(text)


def test_window_period_budget_and_rate_bounds():
    assert bounds.check_window(1) == 1 and bounds.check_window(365 * 86400) == 365 * 86400
    for bad in (0, 365 * 86400 + 1):
        with pytest.raises(ValueError, match="between 1s and 365d"):
            bounds.check_window(bad)
    assert bounds.check_period_days(3650) == 3650
    for bad in (0, 3651, 10**17, True, 1.5):
        with pytest.raises(ValueError):
            bounds.check_period_days(bad)
    assert bounds.check_budget(1_000_000 * NANOS_PER_USD) == 10**15
    with pytest.raises(ValueError, match="at most 1000000.00 dollars"):
        bounds.check_budget(10**15 + 1)
    with pytest.raises(ValueError):
        bounds.check_rate(10**9 + 1)


def test_metadata_is_small_and_flat():
    ok = {"customer": "c-1", "tier": 2, "trial": False, "note": None}
    assert bounds.check_metadata(ok) == ok
    for bad, words in (
        ([1], "JSON object"),
        ({f"k{i}": i for i in range(51)}, "at most 50 entries"),
        ({"k" * 65: 1}, "1 to 64 characters"),
        ({"": 1}, "1 to 64 characters"),
        ({"k": "v" * 501}, "at most 500 characters"),
        ({"k": {"nested": 1}}, "not nested"),
        ({f"k{i}": "é" * 100 for i in range(30)}, "4096 bytes"),
    ):
        with pytest.raises(ValueError, match=words):
            bounds.check_metadata(bad)
    with pytest.raises(ValueError):
        bounds.check_end_user("u" * 201)


def write(tmp_path, plan: dict | None = None, model: dict | None = None) -> str:
    config = {
        "upstreams": [{"name": "u", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"id": "m", "upstream": "u", "input_per_mtok": "1", "output_per_mtok": "2", **(model or {})}],
        "plans": [{"slug": "p", "budget_per_window": "1", **(plan or {})}],
    }
    path = tmp_path / "tollgate.toml"
    path.write_text(dumps(config))
    return str(path)


@pytest.mark.parametrize(("plan", "message"), [
    ({"window": "366d"}, "plans[0].window: must be between 1s and 365d, got 366d"),
    ({"window": "100000000d"}, "plans[0].window: '100000000d' is longer than 3650d"),
    ({"period_days": 100_000_000_000_000_000}, "plans[0].period_days: must be between 1 and 3650 days"),
    ({"budget_per_window": "1000000.01"}, "plans[0].budget_per_window: must be at most 1000000.00 dollars"),
    ({"price_monthly": "2000000"}, "plans[0].price_monthly: must be at most"),
    ({"rpm": 10**12}, "plans[0].rpm: must be between 1 and 1000000000"),
])
def test_the_config_loader_names_the_plan_value_out_of_bounds(tmp_path, plan, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, plan=plan), env={})
    assert str(info.value).startswith(message)


def test_the_config_loader_bounds_model_token_counts(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[0\].max_output: must be at most 100000000 tokens"):
        load_config(write(tmp_path, model={"max_output": 10**18}), env={})
    plans = load_config(write(tmp_path, plan={"window": "365d", "period_days": 3650}), env={}).plans
    assert [(p.window, p.period_days) for p in plans if p.slug == "p"] == [(365 * 86400, 3650)]
