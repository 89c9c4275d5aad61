"""An agent task priced as caching providers charge it: the resent prefix of each call is a cache hit.

An agent resends its context every step, and providers that cache prompt prefixes bill the part
they have seen before at a discount (DeepSeek about a quarter of the input price, Anthropic a
tenth) and may charge a premium to write the rest into the cache. A prefix cache only hits up to
the first token that changed, so what a call reads from the cache depends on the history policy:

- step 1 reads nothing: its whole prompt is written;
- a step whose history only grew since the last call (nothing trimmed, nothing summarised) starts
  with the whole previous prompt: that prefix is a hit (the previous answer was never a prompt,
  so it is not cached);
- a step after the history was trimmed or summarised changed right after the system prompt:
  only the system prompt is a hit;
- a summarisation call reads the previous prompt as its prefix, like a step that only grew.

Every token of a call that is not a hit is written to the cache (for the next call to read).
Each call is billed on its own, as the gateway bills requests (domain/pricing.py), with and
without the model's cache prices, so the two totals differ by caching alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from tollgate.catalog.reference import ReferenceModel
from tollgate.costlab.agent_sim import TokenFlow
from tollgate.domain.pricing import Price, TokenUsage, charge, undiscounted


def cached_calls(flow: TokenFlow) -> list[TokenUsage]:
    """Every model call of the task (summarisation calls too) with its cache hits and writes."""
    calls: list[TokenUsage] = []
    previous = None
    for s in flow.steps:
        if s.summary_input:
            hit = min(previous.prompt_tokens, s.summary_input) if previous else 0
            calls.append(TokenUsage(s.summary_input, s.summary_output, hit, s.summary_input - hit))
        grew = previous is not None and not s.summary_input and (
            s.history == previous.history + previous.fresh + previous.output)
        hit = previous.prompt_tokens if grew else (s.system if previous is not None else 0)
        calls.append(TokenUsage(s.prompt_tokens, s.output, hit, s.prompt_tokens - hit))
        previous = s
    return calls


@dataclass(frozen=True)
class CacheCost:
    """One model's price of the task, without and with its cache prices, in nano-dollars."""

    model: ReferenceModel
    plain: int
    cached: int
    cached_tokens: int
    input_tokens: int

    @property
    def saved(self) -> int:
        return self.plain - self.cached


def price_calls(price: Price, calls: Iterable[TokenUsage]) -> tuple[int, int]:
    """(without cache prices, with them): each call rounded up on its own, as billed."""
    calls = list(calls)
    return sum(undiscounted(price, c) for c in calls), sum(charge(price, c) for c in calls)


def cache_costs(flow: TokenFlow, models: Iterable[ReferenceModel]) -> list[CacheCost]:
    """The task on every model that publishes cache prices, cheapest with caching first."""
    calls = cached_calls(flow)
    hits, prompt = sum(c.cached for c in calls), sum(c.prompt for c in calls)
    costs = []
    for model in models:
        price = model.price
        if price is None or not price.has_cache_prices:
            continue
        plain, cached = price_calls(price, calls)
        costs.append(CacheCost(model, plain, cached, hits, prompt))
    return sorted(costs, key=lambda c: c.cached)
