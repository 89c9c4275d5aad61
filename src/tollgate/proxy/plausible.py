"""Usage an upstream reports is its word, not a fact: held to what the request could have produced.

An upstream is a program we do not run. Taken as given, a `prompt_tokens` of
10^30 (or -5, "12", 3.5) would be billed, counted against the key's tokens per
minute, and written into a 64-bit SQLite column it does not fit. So every count
is checked against the gateway's own bounds for the request:

- the prompt: the bound its reservation was made for (`Admission.prompt_bound`,
  never below the real count: proxy/estimate.py);
- the output: what the request was allowed to generate (the output cap the flow
  sent upstream, times the choices);
- the ceiling: the larger of the prompt bound and the model's context, plus the
  output allowed. No count the request could have produced is above it.

A count that is not a whole number, is negative or is above the ceiling is
replaced by the bound for its side, and the usage is flagged as a bound (`BOUND`), with
a `doubt` that the usage record keeps in its `error`. Counts under the ceiling
are taken as given: an upstream's chat template may count a few tokens more than
our bound, and the charge never exceeds the reservation anyway (ledger/embedded.py).
Usage the gateway counted itself (an estimate) is held to the same ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.domain.usage import BOUND, UPSTREAM
from tollgate.proxy.sse import Reported, Usage

SHOWN = 40  # characters of an unbelievable value kept in the record's error text


@dataclass(frozen=True, slots=True)
class Limits:
    prompt: int  # the prompt bound: what a bad prompt count is replaced by
    output: int  # the output allowed: what a bad completion count is replaced by
    ceiling: int  # above this, no count is believed


def limits(prompt_bound: int, output_allowed: int, context: int) -> Limits:
    prompt, output = max(prompt_bound, 0), max(output_allowed, 0)
    return Limits(prompt, output, max(prompt, context) + output)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _count(value: object, ceiling: int) -> tuple[int | None, str]:
    """(the count, "") when it is believable, else (None, why not)."""
    if type(value) is int:  # not bool: JSON's true is no count
        n = value
    elif type(value) is float and value.is_integer():  # 12.0: a whole number, written as a float
        n = int(value)
    else:
        return None, f"{_show(value)} is not a whole number"
    if n < 0:
        return None, f"{n} is negative"
    if n > ceiling:
        return None, f"{_show(n)} is above what the request could have produced ({ceiling})"
    return n, ""


def cache_parts(cached: object, write: object, prompt_tokens: int) -> tuple[int | None, int | None]:
    """The prompt's cache hits and cache writes when believable: whole numbers, not negative, adding up to
    at most the prompt. Otherwise dropped (None), not flagged: those tokens are then billed at the input
    price, like any prompt token, and the charge stays within the reservation (it held every prompt
    token at the dearest rate, domain/pricing.py)."""
    hits = cached if type(cached) is int and 0 <= cached <= prompt_tokens else None
    writes = write if type(write) is int and 0 <= write <= prompt_tokens else None
    if hits is not None and writes is not None and hits + writes > prompt_tokens:
        return None, None  # the parts do not add up: neither is believed
    return hits, writes


def checked(prompt: object, completion: object, cached: object, basis: str, bounds: Limits,
            cache_write: object = None) -> Usage:
    """Usage whose counts are all believable: each bad one replaced by its bound, and flagged."""
    doubts = []
    prompt_tokens, why = _count(prompt, bounds.ceiling)
    if prompt_tokens is None:
        prompt_tokens = bounds.prompt
        doubts.append(f"prompt_tokens {why}")
    completion_tokens, why = _count(completion, bounds.ceiling)
    if completion_tokens is None:
        completion_tokens = bounds.output
        doubts.append(f"completion_tokens {why}")
    cached_tokens, write_tokens = cache_parts(cached, cache_write, prompt_tokens)
    if not doubts:
        return Usage(prompt_tokens, completion_tokens, basis, cached_tokens, cache_write_tokens=write_tokens)
    whose = "upstream usage" if basis == UPSTREAM else "the gateway's own count"
    doubt = (f"{whose} not believed ({'; '.join(doubts)}): counted at the gateway's bounds, "
             f"{prompt_tokens} in and {completion_tokens} out")
    return Usage(prompt_tokens, completion_tokens, BOUND, cached_tokens, doubt, write_tokens)


def from_upstream(reported: Reported, bounds: Limits) -> Usage:
    """The upstream's usage block, checked."""
    return checked(reported.prompt_tokens, reported.completion_tokens, reported.cached_tokens, UPSTREAM, bounds,
                   reported.cache_write_tokens)


def within(usage: Usage, bounds: Limits) -> Usage:
    """Usage counted here (or already checked), held to the same bounds; unchanged when it is within them."""
    ceiling = bounds.ceiling
    if 0 <= usage.prompt_tokens <= ceiling and 0 <= usage.completion_tokens <= ceiling:
        return usage
    return checked(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.basis, bounds,
                   usage.cache_write_tokens)
