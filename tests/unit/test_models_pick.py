"""`models pick`: the selection guide's decision tree over the reference catalog."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tollgate.catalog import load_reference_catalog
from tollgate.costlab.pick import Needs, pick_model
from tollgate.costlab.pick_view import render_pick


@pytest.fixture(scope="module")
def catalog():
    return load_reference_catalog()


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        (Needs(images=True), "llama-4-scout"),
        (Needs(reasoning=True), "deepseek-r1"),
        (Needs(tools=True), "kimi-k2.5"),
        (Needs(code=True), "qwen3-coder-480b-a35b"),
        (Needs(embeddings=True), "bge-large"),
        (Needs(latency_ms=200), "llama-3.1-8b"),
        (Needs(context_tokens=150_000), "minimax-m2.5"),
        (Needs(max_quality=True), "qwen3-235b-a22b"),
        (Needs(), "deepseek-v3.2"),
    ],
)
def test_each_question_answers_with_the_guides_model(catalog, needs, expected):
    pick = pick_model(catalog, needs)
    assert pick.model.id == expected
    assert pick.model.id == catalog.guide[pick.node]
    assert pick.reasons and pick.model.name in " ".join(pick.reasons)


def test_first_yes_wins_and_later_yeses_are_suggested(catalog):
    pick = pick_model(catalog, Needs(images=True, tools=True, embeddings=True))
    assert pick.node == "images"
    assert [step.node for step in pick.path if step.answer] == ["images", "tools", "embeddings"]
    assert [(node, model.id) for node, model in pick.also] == [("tools", "kimi-k2.5"), ("embeddings", "bge-large")]


def test_latency_and_context_only_count_beyond_the_default_model(catalog):
    general = catalog.guide_pick("general")
    assert pick_model(catalog, Needs(latency_ms=general.ttft_ms)).model.id == "deepseek-v3.2"
    assert pick_model(catalog, Needs(latency_ms=general.ttft_ms - 1)).model.id == "llama-3.1-8b"
    assert pick_model(catalog, Needs(context_tokens=general.context_tokens)).model.id == "deepseek-v3.2"


def test_a_guide_pick_that_cannot_hold_the_context_is_replaced(catalog):
    minimax = catalog.get("minimax-m2.5")
    pick = pick_model(catalog, Needs(context_tokens=minimax.context_tokens + 1))
    assert pick.model.id != "minimax-m2.5"
    assert pick.guide_model is minimax
    assert pick.model.context_tokens >= minimax.context_tokens + 1 and pick.model.open_weights
    assert "MiniMax M2.5" in pick.reasons[0]
    huge = pick_model(catalog, Needs(context_tokens=2_000_000))
    assert huge.model.id == "llama-4-scout"


def test_no_fitting_alternative_keeps_the_pick_with_a_warning(catalog):
    pick = pick_model(catalog, Needs(tools=True, latency_ms=200))
    assert pick.model.id == "kimi-k2.5"
    assert any("310 ms" in w for w in pick.warnings)
    fastest = pick_model(catalog, Needs(latency_ms=50))
    assert fastest.model.id == "llama-3.1-8b" and fastest.warnings


def test_proprietary_models_answer_only_when_allowed(catalog):
    need = 500_000
    closed = pick_model(catalog, Needs(code=True, context_tokens=need))
    assert closed.model.open_weights and closed.warnings
    opened = pick_model(catalog, Needs(code=True, context_tokens=need, allow_proprietary=True))
    assert opened.model.id == "claude-opus-4.6"
    assert any("proprietary" in w for w in opened.warnings)


def test_rendered_path_marks_the_answer(catalog):
    text = render_pick(pick_model(catalog, Needs(tools=True)))
    assert "Need tool calling / agent loops?" in text and "yes  -> Kimi K2.5" in text
    assert "Pick: Kimi K2.5 (kimi-k2.5)" in text


def test_cli_pick(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tollgate", "models", "pick", "--code", "--latency-ms", "200", "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "qwen3-coder-480b-a35b" and data["node"] == "code"
    assert data["also"] == [{"node": "low_latency", "model": "llama-3.1-8b"}]
    text = subprocess.run([sys.executable, "-m", "tollgate", "models", "pick", "--context", "200000"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert text.returncode == 0, text.stderr
    assert "Decision path:" in text.stdout and "The guide picks MiniMax M2.5" in text.stdout
