"""The default request classifier for model `auto`: in-process, NumPy only, no network.

A linear model scores the latest user turn (hashed word and character n-grams, see
`features`). The rest of the request then shifts those scores, as a product of tempered
experts: the system prompt and the earlier user turns are scored by the same model and added
with small weights (a coding-assistant system prompt nudges towards code; "and in Rust?" after a
code question stays code), and tools are an agent prior (a bonus when tools are offered, a larger
one when the conversation is inside a tool loop or a tool call is required). The weights come
from the artifact's manifest; docs/routing.md gives the numbers and how they were chosen.

    clf = RequestClassifier.load()
    category, confidence = clf.classify(body)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tollgate.config.schema import CATEGORIES
from tollgate.proxy.routing.features import RequestParts, extract_parts, text_features

MODEL_DIR = Path(__file__).parent / "model"
MODEL_FILE = "router.npz"
MANIFEST_FILE = "router.json"
_AGENT = CATEGORIES.index("agent")
_CACHE_LIMIT = 512  # system prompts repeat across requests; their scores are cached

# Defaults for the request-level combination; a manifest's "combine" overrides them.
DEFAULT_COMBINE: dict[str, float] = {
    "system_weight": 0.1,  # times the system prompt's log-probabilities
    "history_weight": 0.3,  # times the earlier user turns' log-probabilities
    "history_weight_short": 1.0,  # ... when the latest turn is a short follow-up
    "short_chars": 60,
    "tools_offered": 1.0,  # added to the agent logit when tools are offered
    "tool_loop": 4.0,  # ... when the last message is a tool result
    "tool_required": 3.0,  # ... when tool_choice forces a call
    "tool_calls_seen": 1.0,  # ... when earlier assistant turns called tools
    "tool_results_seen": 2.0,  # ... when tool results appear anywhere in the conversation
}


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


class RequestClassifier:
    """Classify a chat request into one of CATEGORIES with a confidence in [0, 1]."""

    def __init__(
        self,
        table: np.ndarray,
        idf: np.ndarray,
        bias: np.ndarray,
        *,
        temperature: float = 1.0,
        combine: dict[str, float] | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        bits = int(table.shape[0]).bit_length() - 1
        if table.shape != (1 << bits, len(CATEGORIES)) or idf.shape != (1 << bits,) or bias.shape != (len(CATEGORIES),):
            raise ValueError("router model arrays have inconsistent shapes")
        self.bits = bits
        self.table = np.ascontiguousarray(table, dtype=np.float32)
        self.idf = np.ascontiguousarray(idf, dtype=np.float32)
        self.bias = bias.astype(np.float64)
        self.temperature = float(temperature)
        self.combine = {**DEFAULT_COMBINE, **(combine or {})}
        self.manifest = manifest or {}
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> RequestClassifier:
        """Load the packaged artifact, or one at `path` (its directory or its .npz file)."""
        p = Path(path) if path is not None else MODEL_DIR
        npz = p / MODEL_FILE if p.is_dir() else p
        manifest_path = npz.with_suffix(".json")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
        with np.load(npz) as data:
            table, idf, bias = data["table"], data["idf"], data["bias"]
        return cls(
            table,
            idf,
            bias,
            temperature=float(manifest.get("temperature", 1.0)),
            combine=manifest.get("combine"),
            manifest=manifest,
        )

    def text_logprobs(self, text: str) -> np.ndarray:
        """Calibrated log-probabilities (K,) of one text on its own."""
        wid, wcnt, cid, ccnt = text_features(text, self.bits)
        z = self.bias.copy()
        for ids, counts in ((wid, wcnt), (cid, ccnt)):
            if len(ids):
                v = (1.0 + np.log(counts)).astype(np.float32) * self.idf[ids]
                n = float(np.sqrt(np.dot(v, v)))
                if n > 0:
                    z += (v / n) @ self.table[ids]
        return _log_softmax(z / self.temperature)

    def _cached_logprobs(self, text: str) -> np.ndarray:
        hit = self._cache.get(text)
        if hit is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            hit = self._cache[text] = self.text_logprobs(text)
        return hit

    def part_scores(self, parts: RequestParts) -> np.ndarray:
        """Combined log-scores (K,) of the parts of one request; higher is more likely."""
        c = self.combine
        z = self.text_logprobs(parts.user)
        if parts.system.strip() and c["system_weight"]:
            z = z + c["system_weight"] * self._cached_logprobs(parts.system)
        if parts.history.strip():
            short = len(parts.user) < c["short_chars"]
            weight = c["history_weight_short"] if short else c["history_weight"]
            if weight:
                z = z + weight * self.text_logprobs(parts.history)
        bonus = 0.0
        if parts.tools_offered:
            bonus += c["tools_offered"]
        if parts.in_tool_loop:
            bonus += c["tool_loop"]
        if parts.tool_required:
            bonus += c["tool_required"]
        if parts.tool_calls_seen:
            bonus += c["tool_calls_seen"]
        if parts.tool_results_seen:
            bonus += c["tool_results_seen"]
        if bonus:
            z = z.copy()
            z[_AGENT] += bonus
        return z

    def scores(self, body: Any) -> np.ndarray:
        """Probabilities (K,) over CATEGORIES for a request body."""
        z = self.part_scores(extract_parts(body))
        p = np.exp(z - z.max())
        return p / p.sum()

    def classify(self, body: Any) -> tuple[str, float]:
        """(category, confidence) for an OpenAI chat-completions or completions request body."""
        p = self.scores(body)
        k = int(p.argmax())
        return CATEGORIES[k], float(p[k])
