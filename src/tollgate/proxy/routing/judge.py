"""The LLM-judge classifier: a small model names the category; anything else means `general`.

One request per classification, temperature 0, a few tokens; it goes straight
to the judge model's upstream (the routing decision is the gateway's cost, not
the caller's), and any failure or unknown answer falls back to `general`.
"""

from __future__ import annotations

import asyncio

import orjson

from tollgate.config.schema import CATEGORIES
from tollgate.proxy.models import ServedModel
from tollgate.proxy.routing.text import request_summary

JUDGE_PROMPT = (
    "You route requests to specialist models. Read the request and answer with exactly one word:\n"
    "simple - greetings, small talk, FAQ, short factual questions\n"
    "general - complex questions, analysis, writing, summarization, advice\n"
    "reasoning - math, logic, multi-step problems, science\n"
    "code - writing, debugging, refactoring or explaining code\n"
    "agent - needs tools, web search, live data or multi-step actions\n"
    "Answer with the category word only."
)
JUDGE_TIMEOUT = 10.0


def parse_category(answer: str) -> str:
    words = answer.strip().lower().replace(".", " ").replace(":", " ").split()
    for word in words[:3]:
        if word in CATEGORIES:
            return word
    return "general"


class JudgeClassifier:
    def __init__(self, model: ServedModel, timeout: float = JUDGE_TIMEOUT) -> None:
        self.model = model
        self.timeout = timeout
        self.failures = 0

    async def classify(self, body: dict) -> str:
        request = {
            "model": self.model.config.upstream_model, "temperature": 0, "max_tokens": 4, "stream": False,
            "messages": [{"role": "system", "content": JUDGE_PROMPT},
                         {"role": "user", "content": request_summary(body)}],
        }
        try:
            return await asyncio.wait_for(self._ask(orjson.dumps(request)), self.timeout)
        except Exception:
            self.failures += 1
            return "general"

    async def _ask(self, payload: bytes) -> str:
        for upstream in self.model.pick():
            upstream.inflight += 1
            try:
                response = await upstream.send("/chat/completions", payload)
                raw = await response.read()
            finally:
                upstream.inflight -= 1
            if response.status != 200:
                continue
            answer = orjson.loads(raw)["choices"][0]["message"].get("content") or ""
            return parse_category(answer)
        self.failures += 1
        return "general"
