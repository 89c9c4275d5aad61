"""A model's price as providers really charge it, and what one request costs or may cost.

Providers price the parts of a prompt differently: a cache hit (a prefix the provider has
seen) at a discount, a cache write at a premium, and a prompt above a context threshold at
a higher tier for the whole request (input and output alike). A request is billed once its
usage is known (`charge`); before it is sent, the gateway holds the most it could cost
(`reserve`). Two rules keep the budget a hard cap:

- `charge` prices each part at its own rate: the cached tokens, the cache-write tokens,
  the rest of the prompt, the output; summed as integers and rounded up once, to a
  nano-dollar (the tier is the one the whole prompt falls in).
- `reserve` assumes the dearest case for anything the usage may turn out to be, given
  the prompt bound and the output cap: every prompt token at the dearest prompt rate of
  every tier the bound reaches, every output token at the dearest output rate of those
  tiers. So any usage with at most that many tokens on each side is charged no more
  (`charge(...) <= reserve(...)`, tested over random prices in tests/unit/test_pricing.py),
  whatever the prices, even a tier cheaper than the one below it.

Money is integer nano-dollars per million tokens; no float touches it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.domain.money import TOKENS_PER_MTOK


@dataclass(frozen=True, slots=True)
class Rates:
    """Prices in nano-dollars per million tokens. A cache price left out (None) is the input price:
    cached or cache-written tokens then cost what any prompt token costs."""

    input_per_mtok: int
    output_per_mtok: int
    cached_input_per_mtok: int | None = None
    cache_write_per_mtok: int | None = None

    @property
    def cached(self) -> int:
        """What a cached prompt token (a cache hit) costs."""
        return self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok

    @property
    def write(self) -> int:
        """What a prompt token written to the provider's cache costs."""
        return self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok

    @property
    def dearest_prompt(self) -> int:
        """The most any one prompt token can cost at these rates (hit, write or neither)."""
        return max(self.input_per_mtok, self.cached, self.write)


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates for a request whose prompt is longer than `above_tokens` (a long-context tier)."""

    above_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """One request's tokens by part. `prompt` counts every prompt token, cached and written ones included;
    `cached` and `cache_write` are parts of it (their sum is at most `prompt`)."""

    prompt: int
    completion: int
    cached: int = 0
    cache_write: int = 0

    @property
    def uncached(self) -> int:
        """Prompt tokens neither read from nor written to the cache: billed at the input price."""
        return self.prompt - self.cached - self.cache_write


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price: base rates, and tiers by prompt length in ascending `above_tokens`."""

    base: Rates
    tiers: tuple[Tier, ...] = ()

    @classmethod
    def flat(cls, input_per_mtok: int, output_per_mtok: int) -> Price:
        return cls(Rates(input_per_mtok, output_per_mtok))

    @property
    def has_cache_prices(self) -> bool:
        """Whether any tier prices cached or cache-written tokens apart from the rest of the prompt."""
        return any(r.cached_input_per_mtok is not None or r.cache_write_per_mtok is not None
                   for r in (self.base, *(t.rates for t in self.tiers)))

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates a request with this many prompt tokens is billed at: the last tier it is above."""
        rates = self.base
        for tier in self.tiers:
            if prompt_tokens > tier.above_tokens:
                rates = tier.rates
        return rates

    def reachable(self, prompt_bound: int) -> tuple[Rates, ...]:
        """Every rate set a request whose prompt is at most `prompt_bound` tokens may be billed at."""
        return (self.base, *(t.rates for t in self.tiers if prompt_bound > t.above_tokens))

    def worst_rates(self, prompt_bound: int) -> tuple[int, int]:
        """(dearest prompt token, dearest output token) over every tier `prompt_bound` reaches."""
        reachable = self.reachable(prompt_bound)
        return max(r.dearest_prompt for r in reachable), max(r.output_per_mtok for r in reachable)


def _round_up(numerator: int) -> int:
    return -((-numerator) // TOKENS_PER_MTOK)


def charge(price: Price, usage: TokenUsage) -> int:
    """What `usage` costs in nano-dollars: each part at its own rate, in the tier of the whole prompt,
    summed and rounded up once."""
    rates = price.rates_for(usage.prompt)
    return _round_up(usage.uncached * rates.input_per_mtok + usage.cached * rates.cached
                     + usage.cache_write * rates.write + usage.completion * rates.output_per_mtok)


def undiscounted(price: Price, usage: TokenUsage) -> int:
    """What `usage` would cost with every prompt token at the tier's plain input price (no cache pricing)."""
    rates = price.rates_for(usage.prompt)
    return _round_up(usage.prompt * rates.input_per_mtok + usage.completion * rates.output_per_mtok)


def cache_saving(price: Price, usage: TokenUsage) -> int:
    """What cache pricing saved on `usage` (negative when cache-write premiums cost more than hits saved)."""
    return undiscounted(price, usage) - charge(price, usage)


def reserve(price: Price, prompt_bound: int, output_tokens: int) -> int:
    """The most a request of at most `prompt_bound` prompt tokens and `output_tokens` out can be charged."""
    prompt_rate, output_rate = price.worst_rates(prompt_bound)
    return _round_up(prompt_bound * prompt_rate + output_tokens * output_rate)


def output_room(price: Price, budget: int, prompt_bound: int, cap: int) -> int:
    """The most output tokens (up to `cap`) whose worst case, on top of the prompt's, fits in `budget`."""
    prompt_rate, output_rate = price.worst_rates(prompt_bound)
    room = budget * TOKENS_PER_MTOK - prompt_bound * prompt_rate
    if room < 0:
        return 0
    if output_rate <= 0:
        return cap
    return min(cap, room // output_rate)
