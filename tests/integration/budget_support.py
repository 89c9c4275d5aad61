"""Shared pieces of the budget tests: a metered model, its prices, and the 429 contract check."""

from __future__ import annotations

import math
import time
from datetime import datetime

from tokenizers import Tokenizer

from tests.conftest import minilm_tokenizer

IN, OUT = 1000, 3000  # nano-dollars per token: $1 and $3 per million
MAX_OUTPUT = 256


def metered_config(upstream_url: str, budget: str, window: str = "5h", **server) -> dict:
    """One upstream that counts tokens with a real tokenizer, and a model whose gateway uses the same file."""
    return {
        "server": server,
        "upstreams": [{"name": "fake", "base_url": upstream_url + "/v1", "timeout": 30}],
        "models": [{"id": "metered", "upstream": "fake", "input_per_mtok": "1", "output_per_mtok": "3",
                    "max_output": MAX_OUTPUT, "tokenizer": minilm_tokenizer()}],
        "plans": [{"slug": "metered", "window": window, "budget_per_window": budget, "rpm": 1_000_000,
                   "tpm": 1_000_000_000}],
    }


class Counter:
    """Counts prompt tokens exactly as the fake upstream does, to know each request's real cost."""

    def __init__(self) -> None:
        self.tok = Tokenizer.from_file(minilm_tokenizer())
        self.tok.no_truncation()
        self.tok.no_padding()

    def tokens(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False).ids) if text else 0

    def real_cost(self, prompt: str, reply: int, max_tokens: int | None) -> int:
        """What a request costs when it runs to the end: one user message."""
        prompt_tokens = self.tokens(prompt) + 4 + 3
        out = min(reply, max_tokens if max_tokens is not None else MAX_OUTPUT)
        return prompt_tokens * IN + out * OUT


def check_budget_refusal(status: int, headers, body: dict, now: float | None = None) -> None:
    """Every point of SPEC section 2's 429 contract."""
    now = time.time() if now is None else now
    assert status == 429
    error = body["error"]
    assert error["type"] == "budget_exceeded" and error["code"] == "budget_exceeded" and error["param"] is None
    reset = error["reset_at"]
    assert reset.endswith("Z")
    reset_ts = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
    assert "usage limit" in error["message"] and reset in error["message"]
    assert error["message"].startswith("budget exceeded: usage limit reached for this")
    assert headers["x-should-retry"] == "false"
    retry_after = int(headers["retry-after"])
    assert abs(retry_after - math.ceil(reset_ts - now)) <= 2
