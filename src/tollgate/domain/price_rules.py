"""What makes a model's price a plausible one, checked where prices come in (the config, the catalog).

A price is typed by hand from a provider's pricing page, and a slip there bills every request
wrongly without a sound. The slips these rules catch:

- a cache hit dearer than the input price, or a cache write cheaper than it (the two keys swapped:
  providers discount hits and charge a premium, or nothing, to write);
- a tier that leaves out a cache price the model has (the long prompt's cache would silently be
  billed at another tier's figure), or has one the model lacks;
- tiers out of order, at or past the model's context (never reached), or cheaper than the prices
  below their threshold (a long prompt is never cheaper per token).

Each problem comes back as (the key, in the config's names, what is wrong), so that each loader
words it in its own way; none means the price is good.
"""

from __future__ import annotations

from tollgate.domain.money import format_usd
from tollgate.domain.pricing import Price, Rates

PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok")
CACHE_KEYS = PRICE_KEYS[2:]


def _cache_problems(rates: Rates, where: str) -> list[tuple[str, str]]:
    problems = []
    price = format_usd(rates.input_per_mtok)
    if rates.cached_input_per_mtok is not None and rates.cached_input_per_mtok > rates.input_per_mtok:
        problems.append((f"{where}cached_input_per_mtok", f"a cache hit costs at most the input price ({price}), "
                                                          f"got {format_usd(rates.cached_input_per_mtok)}"))
    if rates.cache_write_per_mtok is not None and rates.cache_write_per_mtok < rates.input_per_mtok:
        problems.append((f"{where}cache_write_per_mtok", f"a cache write costs at least the input price ({price}), "
                                                         f"got {format_usd(rates.cache_write_per_mtok)}; leave it "
                                                         "out when writes cost the input price"))
    return problems


def price_problems(price: Price, context: int | None) -> list[tuple[str, str]]:
    """Every problem of `price` for a model of `context` tokens (None: unknown), in key order."""
    problems = _cache_problems(price.base, "")
    below, below_rates = 0, price.base
    for i, tier in enumerate(price.tiers):
        where = f"tiers[{i}]."
        for key in CACHE_KEYS:
            own, base = getattr(tier.rates, key), getattr(price.base, key)
            if own is None and base is not None:
                problems.append((where + key, f"is required: the model sets {key}, so each tier gives its own"))
            elif own is not None and base is None:
                problems.append((where + key, f"the model sets no {key}, so its tiers cannot either"))
        if tier.above_tokens <= below:
            problems.append((where + "above_tokens", f"tiers go in ascending above_tokens, got {tier.above_tokens} "
                                                     f"after {below}"))
        if context is not None and tier.above_tokens >= context:
            problems.append((where + "above_tokens", f"{tier.above_tokens} is not below the model's context "
                                                     f"({context}), so no prompt could reach the tier"))
        problems += _cache_problems(tier.rates, where)
        for key in PRICE_KEYS:
            own, lower = getattr(tier.rates, key), getattr(below_rates, key)
            if own is not None and lower is not None and own < lower:
                problems.append((where + key, f"{format_usd(own)} is below the price under the threshold "
                                              f"({format_usd(lower)}); a tier prices long prompts at least as high"))
        below, below_rates = tier.above_tokens, tier.rates
    return problems
