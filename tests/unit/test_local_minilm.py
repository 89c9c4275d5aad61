"""MiniLMUpstream: all-MiniLM-L6-v2 in NumPy, checked against a plain-loop reference."""

from __future__ import annotations

import asyncio
import base64
import json
import math

import numpy as np
import orjson
import pytest
from safetensors.numpy import load_file

from tollgate.config import UpstreamConfig
from tollgate.proxy.upstream.local.files import bundled_minilm
from tollgate.proxy.upstream.local.minilm import MiniLMUpstream

pytestmark = pytest.mark.local_model

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
]


@pytest.fixture(scope="module")
def upstream():
    up = MiniLMUpstream(UpstreamConfig(name="emb", kind="minilm"))
    asyncio.run(up.start())
    yield up
    asyncio.run(up.close())


async def post(up, body) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await up.send("/embeddings", raw)
    return response.status, json.loads(await response.read())


def embed(up, inputs, **extra) -> tuple[np.ndarray, dict]:
    status, body = asyncio.run(post(up, {"model": "minilm", "input": inputs, **extra}))
    assert status == 200, body
    vectors = np.array([d["embedding"] for d in body["data"]], dtype=np.float64)
    return vectors, body


# --- a deliberately naive reference: per token, per head, plain loops --------
def reference_embedding(ids: list[int]) -> np.ndarray:
    directory = bundled_minilm()
    w = {k: v.astype(np.float64) for k, v in load_file(str(directory / "model.safetensors")).items()
         if v.dtype != np.int64}
    cfg = json.loads((directory / "config.json").read_text())
    heads, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]

    def norm(v, name):
        mu = sum(v) / len(v)
        var = sum((x - mu) ** 2 for x in v) / len(v)
        return (v - mu) / math.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]

    def dense(v, name):
        return w[name + ".weight"] @ v + w[name + ".bias"]

    gelu = np.vectorize(lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))))
    word = w["embeddings.word_embeddings.weight"]
    position = w["embeddings.position_embeddings.weight"]
    token_type = w["embeddings.token_type_embeddings.weight"][0]
    states = [norm(word[t] + position[i] + token_type, "embeddings.LayerNorm")
              for i, t in enumerate(ids)]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q = [dense(h, p + "attention.self.query") for h in states]
        k = [dense(h, p + "attention.self.key") for h in states]
        v = [dense(h, p + "attention.self.value") for h in states]
        size = len(states[0]) // heads
        new_states = []
        for i in range(len(states)):
            context = np.zeros(len(states[0]))
            for h in range(heads):
                sl = slice(h * size, (h + 1) * size)
                scores = [float(q[i][sl] @ k[j][sl]) / math.sqrt(size) for j in range(len(states))]
                top = max(scores)
                weights = [math.exp(s - top) for s in scores]
                total = sum(weights)
                for j, wt in enumerate(weights):
                    context[sl] += wt / total * v[j][sl]
            attn = norm(dense(context, p + "attention.output.dense") + states[i],
                        p + "attention.output.LayerNorm")
            inner = gelu(dense(attn, p + "intermediate.dense"))
            new_states.append(norm(dense(inner, p + "output.dense") + attn, p + "output.LayerNorm"))
        states = new_states
    pooled = sum(states) / len(states)
    return pooled / math.sqrt(sum(x * x for x in pooled))


def test_matches_the_naive_reference(upstream):
    for sentence in SENTENCES[:2]:
        ids = upstream.model.tokenize([sentence])[0]
        ours, _ = embed(upstream, sentence)
        diff = np.abs(ours[0] - reference_embedding(ids)).max()
        assert diff < 1e-5, diff


def test_shape_norm_and_response_format(upstream):
    vectors, body = embed(upstream, SENTENCES)
    assert body["object"] == "list" and body["model"] == "minilm"
    assert [d["index"] for d in body["data"]] == list(range(len(SENTENCES)))
    assert all(d["object"] == "embedding" for d in body["data"])
    assert vectors.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    counter = upstream.token_counter
    expected = sum(counter.count_text(s) for s in SENTENCES)
    assert body["usage"] == {"prompt_tokens": expected, "total_tokens": expected}


def test_batch_equals_individual(upstream):
    batch, _ = embed(upstream, SENTENCES)
    single = np.stack([embed(upstream, s)[0][0] for s in SENTENCES])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_related_sentences_are_closer_than_unrelated(upstream):
    v, _ = embed(upstream, SENTENCES)
    sim = v @ v.T
    assert sim[0, 1] > 0.5  # eating food / eating bread
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[0, 4] + 0.3
    assert sim[0, 3] > sim[0, 2]  # both about a man doing something


def test_base64_is_little_endian_float32_of_the_same_vectors(upstream):
    floats, _ = embed(upstream, SENTENCES[:2])
    status, body = asyncio.run(post(upstream, {"model": "m", "input": SENTENCES[:2],
                                               "encoding_format": "base64"}))
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4")
                        for d in body["data"]])
    np.testing.assert_allclose(decoded, floats, atol=1e-7)


def test_dimensions_shortens_and_renormalises(upstream):
    full, _ = embed(upstream, SENTENCES[:2])
    short, _ = embed(upstream, SENTENCES[:2], dimensions=64)
    assert short.shape == (2, 64)
    expected = full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True)
    np.testing.assert_allclose(short, expected, atol=1e-6)


def test_token_id_input_equals_text_input(upstream):
    ids = [upstream.model.tokenize([s])[0][1:-1] for s in SENTENCES[:3]]  # without CLS/SEP
    from_text, text_body = embed(upstream, SENTENCES[:3])
    from_ids, ids_body = embed(upstream, ids)
    np.testing.assert_allclose(from_ids, from_text, atol=1e-6)
    assert ids_body["usage"] == text_body["usage"]
    single, _ = embed(upstream, ids[0])
    np.testing.assert_allclose(single[0], from_text[0], atol=1e-6)


def test_long_input_is_truncated_to_256_word_pieces(upstream):
    long = "budget " * 400
    counter = upstream.token_counter
    assert counter.count_text(long) == 256
    vectors, body = embed(upstream, [long, long + "and then something else entirely"])
    assert body["usage"]["prompt_tokens"] == 512
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)  # the tail was cut


def test_concurrent_requests_and_a_responsive_loop(upstream):
    async def main():
        busy_ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal busy_ticks
            while not done.is_set():
                busy_ticks += upstream.busy  # the worker is embedding right now
                await asyncio.sleep(0.002)

        task = asyncio.create_task(ticker())
        big = [f"{s} Number {i}." for i in range(10) for s in SENTENCES]
        results = await asyncio.gather(
            post(upstream, {"model": "m", "input": big}),
            *(post(upstream, {"model": "m", "input": s}) for s in SENTENCES),
        )
        done.set()
        await task
        return busy_ticks, results

    busy_ticks, results = asyncio.run(main())
    assert [status for status, _ in results] == [200] * (1 + len(SENTENCES))
    assert len(results[0][1]["data"]) == 10 * len(SENTENCES)
    # A blocked loop could not tick while the worker computes.
    assert busy_ticks >= 5
    assert upstream.inflight == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", None),
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": ["ok", ""]}, "input"),
        ({"model": "m", "input": ["text", [1, 2]]}, "input"),
        ({"model": "m", "input": [[1, 2], []]}, "input"),
        ({"model": "m", "input": [10**6]}, "input"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "m", "input": "x", "dimensions": 385}, "dimensions"),
        ({"model": "m", "input": ["x"] * 2049}, "input"),
    ],
)
def test_bad_bodies_get_openai_400s(upstream, body, param):
    status, out = asyncio.run(post(upstream, body))
    assert status == 400
    assert out["error"]["type"] == "invalid_request_error" and out["error"]["message"]
    assert out["error"]["param"] == param


def test_other_paths_are_404(upstream):
    response = asyncio.run(upstream.send("/chat/completions", b"{}"))
    assert response.status == 404
