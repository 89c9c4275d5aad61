"""The default request classifier: the shipped artifact, request parsing, robustness, the trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tollgate.config.schema import CATEGORIES
from tollgate.proxy.routing.classifier import RequestClassifier
from tollgate.proxy.routing.features import extract_parts, text_features
from tollgate.training.dataset import split_of
from tollgate.training.train import expand_templates, train


@pytest.fixture(scope="module")
def clf() -> RequestClassifier:
    return RequestClassifier.load()


def user(text: str) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": text}]}


WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather for a city.",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}

UNAMBIGUOUS = {
    "simple": ["hello!", "Who wrote Romeo and Juliet?", "What is the capital of Italy?", "thanks, bye"],
    "general": ["Write a heartfelt letter to my grandmother thanking her for teaching me to bake.",
                "What are the pros and cons of living in a big city compared to a small town?",
                "Summarize the following article in two sentences:\n\nThe museum reopened on Sunday after a two-year renovation that "
                "added a new wing for modern art, a rooftop cafe and wheelchair access to every floor. Officials expect visitors to double."],
    "reasoning": ["Solve for x: 5x - 3 = 2x + 9", "What is the derivative of x^2 * sin(x)?",
                  "A train travels 180 km in 2.5 hours. What is its average speed in km/h?"],
    "code": ["Write a Python function that returns the n-th Fibonacci number.",
             "Why do I get TypeError: 'NoneType' object is not subscriptable in my Python script?",
             "```js\nconst xs = [3, 1, 2];\nxs.sort();\n```\nWhy does this sort numbers wrong when they have two digits?"],
    "agent": ["Book a table for two at an Italian restaurant tonight at 8pm.", "Set an alarm for 6am tomorrow.",
              "Search the web for the latest news about the Mars rover and summarize it."],
}


@pytest.mark.parametrize("label,text", [(k, t) for k, ts in UNAMBIGUOUS.items() for t in ts])
def test_unambiguous_requests_land_right(clf: RequestClassifier, label: str, text: str) -> None:
    category, confidence = clf.classify(user(text))
    assert category == label
    assert 0.2 <= confidence <= 1.0


def test_artifact_manifest_describes_the_model(clf: RequestClassifier) -> None:
    m = clf.manifest
    assert m["categories"] == list(CATEGORIES)
    assert len(m["data"]["sha256"]) == 64
    assert m["metrics"]["heldout_text_accuracy"] > 0.9
    assert clf.table.shape == (1 << m["bits"], len(CATEGORIES))


def test_tool_loop_is_agent_even_for_a_plain_question(clf: RequestClassifier) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What's the capital of France?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"temp_c\": 12}"},
        ],
        "tools": [WEATHER_TOOL],
    }
    assert clf.classify(body)[0] == "agent"
    assert clf.classify(user("What's the capital of France?"))[0] == "simple"


def test_the_latest_user_turn_decides_not_the_first(clf: RequestClassifier) -> None:
    body = {"messages": [
        {"role": "user", "content": "Write a Python function that merges two sorted lists."},
        {"role": "assistant", "content": "```python\ndef merge(a, b):\n    return sorted(a + b)\n```"},
        {"role": "user", "content": "Great, now write a short poem about autumn leaves for my mother's birthday card."},
    ]}
    assert clf.classify(body)[0] == "general"


def test_long_system_prompt_does_not_make_a_short_question_complex(clf: RequestClassifier) -> None:
    system = ("You are the assistant of Acme Bank. Follow these rules. " * 40).strip()
    body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": "Who painted the Sistine Chapel ceiling?"}]}
    assert clf.classify(body)[0] == "simple"


def test_extract_parts_reads_the_chat_structure() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [{"type": "text", "text": "look at this"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "result"},
        ],
        "tools": [WEATHER_TOOL, WEATHER_TOOL],
        "tool_choice": "required",
    }
    p = extract_parts(body)
    assert p.user == "look at this"
    assert p.system == "Be brief.\nAnswer in English."
    assert p.history == "first question"
    assert (p.tools_offered, p.tool_required, p.in_tool_loop, p.tool_calls_seen, p.tool_results_seen) == (2, True, True, 1, 1)
    assert p.has_image and p.turns == 2


def test_extract_parts_other_shapes() -> None:
    assert extract_parts({"prompt": "Once upon a time"}).user == "Once upon a time"
    assert extract_parts({"prompt": ["a", "b"]}).user == "b"
    anthropic = {"system": "sys", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "sunny"}]},
    ]}
    p = extract_parts(anthropic)
    assert (p.user, p.system, p.in_tool_loop, p.tool_calls_seen) == ("weather?", "sys", True, 1)
    assert extract_parts({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL], "tool_choice": "none"}).tools_offered == 0
    assert extract_parts({"messages": [], "functions": [WEATHER_TOOL["function"]]}).tools_offered == 1
    msgs = [{"role": "user", "content": "x"}]
    assert not extract_parts({"messages": msgs, "tools": [WEATHER_TOOL], "tool_choice": {"type": "auto"}}).tool_required
    assert extract_parts({"messages": msgs, "tools": [WEATHER_TOOL], "tool_choice": {"type": "any"}}).tool_required
    assert extract_parts({"messages": msgs, "functions": [WEATHER_TOOL["function"]], "function_call": {"name": "get_weather"}}).tool_required
    assert extract_parts({"messages": msgs, "tools": [WEATHER_TOOL], "tool_choice": {"type": "none"}}).tools_offered == 0


ODD_BODIES = [
    None, [], "a string", 42, {}, {"messages": None}, {"messages": []}, {"messages": "hi"},
    {"messages": [None, 1, "x", {"role": "user"}]},
    {"messages": [{"role": "user", "content": None}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
    {"messages": [{"role": "user", "content": [None, 3, {"type": "text", "text": None}, "plain"]}]},
    {"messages": [{"role": "user", "content": {"unexpected": "dict"}}]},
    {"messages": [{"role": "user", "content": "ok"}], "tools": "not a list", "tool_choice": {"weird": 1}},
    {"messages": [{"role": "user", "content": "\ud800 lone surrogate and \x00 nul"}]},
    {"messages": [{"role": "user", "content": "x" * 2_000_000}]},
    {"messages": [{"role": "system", "content": "word " * 200_000}, {"role": "user", "content": "🙂" * 50_000}]},
    {"prompt": None}, {"prompt": [1, 2]},
]


@pytest.mark.parametrize("body", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_odd_inputs_do_not_raise(clf: RequestClassifier, body: object) -> None:
    category, confidence = clf.classify(body)
    assert category in CATEGORIES
    assert 0.0 <= confidence <= 1.0


def test_text_features_are_deterministic_and_in_range() -> None:
    a = text_features("How do I reverse a list in Python?", 12)
    b = text_features("how do I   reverse a list in python?", 12)  # case and spacing are normalised
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    wid, wcnt, cid, ccnt = a
    assert len(wid) > 5 and len(cid) > 50
    assert wid.min() >= 0 and max(wid.max(), cid.max()) < 1 << 12
    assert text_features("", 12)[0].size == 0


def test_split_is_stable_and_seeded() -> None:
    texts = [f"request number {i}" for i in range(2000)]
    splits = [split_of(t, 0) for t in texts]
    assert splits == [split_of(t, 0) for t in texts]
    assert 120 < splits.count("test") < 280 and 120 < splits.count("val") < 280
    assert splits != [split_of(t, 1) for t in texts]


def test_templates_expand_with_slots() -> None:
    spec = {"groups": [{"label": "code", "n": 5, "frames": ["fix {thing} in {lang}", "keep {braces} {x}"],
                        "slots": {"thing": ["a bug", "a leak"], "lang": ["Go", "C"], "x": ["{lang}"]}}]}
    out = expand_templates(spec, np.random.default_rng(0))
    assert 1 <= len(out) <= 5 and all(label == "code" for _, label in out)
    texts = [t for t, _ in out]
    assert all("{thing}" not in t and "{lang}" not in t for t in texts)
    assert any(t.startswith("keep {braces}") for t in texts) or all(t.startswith("fix") for t in texts)


def test_numpy_trainer_learns_and_writes_a_loadable_artifact(tmp_path) -> None:
    words = {"simple": "hello hi thanks capital who", "general": "essay poem letter story write",
             "reasoning": "solve integral equation probability prove", "code": "python function bug compile javascript",
             "agent": "book weather remind send search"}
    rng = np.random.default_rng(1)
    rows = []
    for label, vocab in words.items():
        vs = vocab.split()
        for i in range(60):
            rows.append({"text": " ".join(rng.choice(vs, 4)) + f" item {i}", "label": label})
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    manifest = train(data, tmp_path / "model", bits=12, l2=1e-3, augment_path=None, log=lambda _m: None)
    assert manifest["metrics"]["heldout_text_accuracy"] >= 0.9
    loaded = RequestClassifier.load(tmp_path / "model")
    assert loaded.classify(user("please solve this integral equation"))[0] == "reasoning"
    assert loaded.classify(user("write a poem and a story"))[0] == "general"
