"""all-MiniLM-L6-v2 in NumPy: BERT encoder, mean pooling, L2 normalisation.

The same computation sentence-transformers runs for this model (modules.json:
Transformer -> Pooling(mean) -> Normalize), in float32, with no torch. Weights
come from `model.safetensors`, word pieces from `tokenizer.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

# sentence_bert_config.json: the model was trained on (and sentence-transformers
# truncates to) 256 word pieces, [CLS] and [SEP] included.
MAX_SEQ_LENGTH = 256
# Sequences per forward pass: bounds the (batch, heads, L, L) attention scores.
MAX_BATCH_TOKENS = 8192

# Abramowitz & Stegun 7.1.26: erfc(z) ~= t*(a1 + t*(a2 + ...)) * exp(-z^2), t = 1/(1 + p*z),
# for z >= 0, |error| <= 1.5e-7: below float32 resolution next to 1.
_P = np.float32(0.3275911)
_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                                   1.061405429))
_SQRT_HALF = np.float32(0.7071067811865476)


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU, x * Phi(x), not the tanh approximation.

    Computed in place on a few buffers: it runs over every (token, 1536) activation.
    """
    z = np.abs(x)
    z *= _SQRT_HALF
    t = z * _P
    t += 1.0
    np.reciprocal(t, out=t)
    q = t * _A[4]
    for a in (_A[3], _A[2], _A[1], _A[0]):
        q += a
        q *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    q *= z
    q *= 0.5  # q = 0.5 * erfc(|x| / sqrt 2) = Phi(-|x|)
    phi = np.where(x >= 0, 1.0 - q, q)
    phi *= x
    return phi


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / np.sqrt(var + np.float32(eps)) * weight + bias


class MiniLM:
    """The model; `embed` is pure NumPy and blocking, so call it from a worker thread."""

    def __init__(self, directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.dimensions = self.hidden
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # tokenizer.json ships with padding and truncation to 128; we truncate to
        # the model's 256 and pad per batch ourselves.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        self.vocab_size = self.tokenizer.get_vocab_size()
        self._load_weights(load_file(str(directory / "model.safetensors")))

    def _load_weights(self, w: dict[str, np.ndarray]) -> None:
        f32 = np.float32
        self.word = w["embeddings.word_embeddings.weight"].astype(f32)
        self.position = w["embeddings.position_embeddings.weight"].astype(f32)
        self.token_type = w["embeddings.token_type_embeddings.weight"].astype(f32)
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.blocks = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def t(name: str, p: str = p) -> np.ndarray:  # (out, in) -> (in, out), contiguous
                return np.ascontiguousarray(w[p + name + ".weight"].T.astype(f32))

            qkv = np.concatenate([t("attention.self.query"), t("attention.self.key"),
                                  t("attention.self.value")], axis=1)
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"]
                                    for n in ("query", "key", "value")])
            self.blocks.append({
                "qkv": qkv, "qkv_b": qkv_b,
                "out": t("attention.output.dense"), "out_b": w[p + "attention.output.dense.bias"],
                "ln1": (w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"]),
                "up": t("intermediate.dense"), "up_b": w[p + "intermediate.dense.bias"],
                "down": t("output.dense"), "down_b": w[p + "output.dense.bias"],
                "ln2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })

    # --- tokens -------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Word pieces with [CLS]/[SEP], truncated to 256."""
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def wrap_ids(self, ids: list[int]) -> list[int]:
        """Word-piece ids given directly: add [CLS]/[SEP] and truncate like text."""
        return [self.cls_id, *ids[: MAX_SEQ_LENGTH - 2], self.sep_id]

    # --- forward ------------------------------------------------------------
    def embed(self, sequences: list[list[int]]) -> np.ndarray:
        """Unit vectors (n, 384), in input order; batches sequences of similar length."""
        out = np.empty((len(sequences), self.hidden), dtype=np.float32)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        start = 0
        while start < len(order):
            longest = len(sequences[order[start]])
            end = start + 1
            while end < len(order):
                longest = len(sequences[order[end]])
                if longest * (end + 1 - start) > MAX_BATCH_TOKENS:
                    break
                end += 1
            batch = order[start:end]
            out[batch] = self._forward([sequences[i] for i in batch])
            start = end
        return out

    def _forward(self, sequences: list[list[int]]) -> np.ndarray:
        b, length = len(sequences), max(len(s) for s in sequences)
        ids = np.zeros((b, length), dtype=np.int64)
        mask = np.zeros((b, length), dtype=np.float32)
        for i, seq in enumerate(sequences):
            ids[i, : len(seq)] = seq
            mask[i, : len(seq)] = 1.0
        x = self.word[ids] + self.position[:length] + self.token_type[0]
        x = layer_norm(x, *self.emb_ln, self.eps)
        # Padded keys get a large negative score, as transformers does (finfo.min).
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for block in self.blocks:
            x = self._layer(x, bias, block)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)

    def _layer(self, x: np.ndarray, bias: np.ndarray, p: dict) -> np.ndarray:
        b, length, hidden = x.shape
        head = hidden // self.heads
        qkv = x @ p["qkv"] + p["qkv_b"]  # (b, L, 3H)
        qkv = qkv.reshape(b, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (b, heads, L, head)
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(head)) + bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, length, hidden)
        x = layer_norm(context @ p["out"] + p["out_b"] + x, *p["ln1"], self.eps)
        inner = gelu(x @ p["up"] + p["up_b"])
        return layer_norm(inner @ p["down"] + p["down_b"] + x, *p["ln2"], self.eps)
