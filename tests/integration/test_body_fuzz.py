"""Every request body gets an answer or a 4xx in its API's shape, never a 5xx (issue 13, point 4).

Hypothesis builds chat, completions, embeddings, Anthropic, count_tokens and Responses bodies from their
schemas, valid and mutated (a field dropped, a value of the wrong type, nested
where it should be flat, out of range), and posts them to a real gateway in
front of a real fake upstream. Each body's answer must be a success or a 4xx
whose error body is in the API's own shape. Afterwards no reservation is held.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import fake_config

# Bodies per API in one run; six APIs. `FUZZ_BODIES` raises it for a longer hunt.
BODIES = int(os.environ.get("FUZZ_BODIES", "1300"))

pytestmark = pytest.mark.slow

TEXT = st.text(max_size=40)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), TEXT)
JSONISH = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)


def mutated(base: st.SearchStrategy[dict]) -> st.SearchStrategy:
    """A valid body, or one with a field dropped, replaced by junk, or the whole body replaced."""

    def mutate(body: dict, data: st.DataObject) -> object:
        action = data.draw(st.sampled_from(["keep", "keep", "drop", "junk", "junk", "add", "whole"]))
        if action == "keep" or not body:
            return body
        key = data.draw(st.sampled_from(sorted(body)))
        if action == "drop":
            return {k: v for k, v in body.items() if k != key}
        if action == "junk":
            return {**body, key: data.draw(JSONISH)}
        if action == "add":
            return {**body, data.draw(st.sampled_from(["max_tokens", "max_completion_tokens", "n", "best_of",
                                                      "stream_options", "tools", "tool_choice", "logit_bias",
                                                      "temperature", "stop", "user", "metadata"])): data.draw(JSONISH)}
        return data.draw(JSONISH)

    return st.builds(lambda body, data: mutate(body, data), base, st.data())


CONTENT_PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries(
        {"url": st.just("data:image/png;base64,iVBORw0KGgo=")})}),
    JSONISH,
)
TOOL_CALL = st.fixed_dictionaries({
    "id": TEXT, "type": st.just("function"),
    "function": st.fixed_dictionaries({"name": TEXT, "arguments": st.one_of(TEXT, JSONISH)}),
})
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "developer"]),
                           "content": st.one_of(TEXT, st.lists(CONTENT_PART, max_size=3))}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": st.one_of(st.none(), TEXT)},
                          optional={"tool_calls": st.lists(TOOL_CALL, max_size=2)}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": TEXT, "content": st.one_of(TEXT, JSONISH)}),
    JSONISH,
)
COMMON = {"stream": st.booleans(), "max_tokens": st.integers(-5, 10**20), "temperature": st.floats(-1, 3),
          "n": st.integers(-1, 5), "stop": st.one_of(TEXT, st.lists(TEXT, max_size=3))}
CHAT = st.fixed_dictionaries({"model": st.sampled_from(["fake-chat", "fc", "auto", "nope", "fake-embed"]),
                              "messages": st.lists(MESSAGE, max_size=4)}, optional=COMMON)
COMPLETION = st.fixed_dictionaries({"model": st.sampled_from(["fake-chat", "nope"]),
                                    "prompt": st.one_of(TEXT, st.lists(TEXT, max_size=3),
                                                        st.lists(st.integers(-1, 70000), max_size=5))},
                                   optional={**COMMON, "best_of": st.integers(-1, 5), "echo": st.booleans()})
EMBEDDING = st.fixed_dictionaries({"model": st.sampled_from(["fake-embed", "fake-chat", "nope"]),
                                   "input": st.one_of(TEXT, st.lists(TEXT, max_size=4),
                                                      st.lists(st.integers(-1, 70000), max_size=5))},
                                  optional={"encoding_format": st.sampled_from(["float", "base64", "x"]),
                                            "dimensions": st.integers(-1, 5000)})
ANTHROPIC_BLOCK = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(TEXT, JSONISH)}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": TEXT, "name": TEXT, "input": JSONISH}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": TEXT,
                           "content": st.one_of(TEXT, JSONISH)}),
    st.fixed_dictionaries({"type": st.just("image"), "source": st.one_of(TEXT, JSONISH)}),
    st.fixed_dictionaries({"type": st.just("document"), "source": st.one_of(TEXT, JSONISH)}),
    JSONISH,
)
ANTHROPIC = st.fixed_dictionaries(
    {"model": st.sampled_from(["fake-chat", "auto", "nope"]), "max_tokens": st.integers(-5, 10**20),
     "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "x"]),
                                                 "content": st.one_of(TEXT, st.lists(ANTHROPIC_BLOCK, max_size=3))}),
                          max_size=4)},
    optional={"system": st.one_of(TEXT, st.lists(ANTHROPIC_BLOCK, max_size=2), JSONISH), "stream": st.booleans(),
              "tools": st.lists(st.fixed_dictionaries({"name": TEXT, "input_schema": JSONISH}), max_size=2),
              "tool_choice": JSONISH, "stop_sequences": st.one_of(st.lists(TEXT, max_size=2), JSONISH),
              # what Claude Code sends beside the rest: dropped, never refused (but never a 5xx either)
              "thinking": JSONISH, "context_management": JSONISH, "output_config": JSONISH, "metadata": JSONISH},
)
# count_tokens: the same body without what only generation reads.
ANTHROPIC_COUNT = st.fixed_dictionaries(
    {"model": st.sampled_from(["fake-chat", "auto", "nope", "fake-embed"]),
     "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "x"]),
                                                 "content": st.one_of(TEXT, st.lists(ANTHROPIC_BLOCK, max_size=3))}),
                          max_size=4)},
    optional={"system": st.one_of(TEXT, st.lists(ANTHROPIC_BLOCK, max_size=2), JSONISH),
              "tools": st.lists(st.fixed_dictionaries({"name": TEXT, "input_schema": JSONISH}), max_size=2),
              "tool_choice": JSONISH, "thinking": JSONISH},
)

# The Responses API: a string or a list of items (messages with parts, function calls and their outputs).
RESPONSES_PART = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text"]), "text": st.one_of(TEXT, JSONISH)}),
    st.fixed_dictionaries({"type": st.just("input_image"), "image_url": st.one_of(TEXT, JSONISH)}),
    JSONISH,
)
RESPONSES_ITEM = st.one_of(
    st.fixed_dictionaries({"type": st.just("message"),
                           "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]),
                           "content": st.one_of(TEXT, st.lists(RESPONSES_PART, max_size=3))}),
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": TEXT}),
    st.fixed_dictionaries({"type": st.just("function_call"), "call_id": TEXT, "name": TEXT,
                           "arguments": st.one_of(TEXT, JSONISH)}),
    st.fixed_dictionaries({"type": st.just("function_call_output"), "call_id": TEXT, "output": st.one_of(TEXT, JSONISH)}),
    st.fixed_dictionaries({"type": st.just("reasoning"), "summary": JSONISH}),
    JSONISH,
)
RESPONSES = st.fixed_dictionaries(
    {"model": st.sampled_from(["fake-chat", "fc", "auto", "nope", "fake-embed"]),
     "input": st.one_of(TEXT, st.lists(RESPONSES_ITEM, max_size=4))},
    optional={"instructions": st.one_of(TEXT, JSONISH), "stream": st.booleans(),
              "max_output_tokens": st.integers(-5, 10**20), "temperature": st.floats(-1, 3),
              "tools": st.lists(st.one_of(st.fixed_dictionaries({"type": st.just("function"), "name": TEXT,
                                                                 "parameters": JSONISH}),
                                          st.fixed_dictionaries({"type": st.just("web_search")}), JSONISH), max_size=2),
              "tool_choice": JSONISH, "previous_response_id": st.one_of(st.none(), TEXT), "text": JSONISH,
              "store": st.booleans(), "reasoning": JSONISH, "include": JSONISH},
)


def check_openai_shape(r: httpx.Response) -> None:
    body = r.json()
    assert isinstance(body.get("error"), dict), r.text
    assert isinstance(body["error"].get("message"), str) and body["error"].get("code"), r.text


def check_anthropic_shape(r: httpx.Response) -> None:
    body = r.json()
    assert body.get("type") == "error" and isinstance(body.get("error"), dict), r.text
    assert isinstance(body["error"].get("message"), str), r.text


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory):
    from tests.support.processes import Gateway, start_upstream

    tmp = tmp_path_factory.mktemp("fuzz")
    upstream = start_upstream(tmp, "fake")
    config = fake_config(upstream.url)
    config["plans"].append({"slug": "fuzz", "window": "5h", "budget_per_window": "1000", "rpm": 10**6,
                            "tpm": 10**9})
    config["routes"] = {"auto": {c: ["fake-chat"] for c in ("simple", "general", "reasoning", "code", "agent")}}
    gw = Gateway(tmp, config)
    gw.start("/health")
    key = gw.key(plan="fuzz", name="fuzz")
    with httpx.Client(base_url=gw.url, timeout=30, headers={"authorization": "Bearer " + key["sk"]}) as client:
        yield gw, client, key
    gw.stop()
    upstream.stop()


def post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body, allow_nan=True)
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def fuzz(client: httpx.Client, path: str, strategy: st.SearchStrategy, shape) -> dict[int, int]:
    """Post generated bodies; the count of answers by status."""
    seen: dict[int, int] = {}

    @settings(max_examples=BODIES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=mutated(strategy))
    def run(body: object) -> None:
        r = post(client, path, body)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, f"{path} answered {r.status_code} to {json.dumps(body)[:600]}: {r.text[:600]}"
        if r.status_code >= 400:
            shape(r)

    run()
    return seen


@pytest.mark.parametrize(("path", "strategy", "shape"), [
    ("/v1/chat/completions", CHAT, check_openai_shape),
    ("/v1/completions", COMPLETION, check_openai_shape),
    ("/v1/embeddings", EMBEDDING, check_openai_shape),
    ("/anthropic/v1/messages", ANTHROPIC, check_anthropic_shape),
    ("/anthropic/v1/messages/count_tokens", ANTHROPIC_COUNT, check_anthropic_shape),
    ("/v1/responses", RESPONSES, check_openai_shape),
], ids=["chat", "completions", "embeddings", "anthropic", "count_tokens", "responses"])
def test_generated_bodies_never_get_a_5xx(fuzz_gateway, path, strategy, shape):
    gw, client, key = fuzz_gateway
    seen = fuzz(client, path, strategy, shape)
    # Both kinds were really exercised: bodies that were served and bodies that were refused.
    assert seen.get(200, 0) > 0 and sum(n for s, n in seen.items() if 400 <= s < 500) > 0, seen
    usage = client.get("/v1/usage").json()
    assert usage["budget"]["reserved"] == 0  # every request settled or released its reservation
