"""The toolkit's own money arithmetic: integer nano-dollars, never a float.

The toolkit ships as its own distribution (`tollgate-agent`, needing only `openai`), so it
cannot import the gateway's `tollgate.domain.money`. These few helpers follow the same
rules: amounts are whole nano-dollars, Decimal only at the edges, and a cost is rounded up
once at the end so it is never under-reported. `tests/unit/test_agent_money.py` checks
that both implementations agree where the gateway is installed too.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

NANOS_PER_USD = 1_000_000_000
TOKENS_PER_MTOK = 1_000_000


def request_cost(input_tokens: int, output_tokens: int, input_per_mtok: int, output_per_mtok: int) -> int:
    """Cost of one request in nano-dollars (prices in nano-dollars per million tokens), rounded up once."""
    numerator = input_tokens * input_per_mtok + output_tokens * output_per_mtok
    return -((-numerator) // TOKENS_PER_MTOK)


def usd_nanos(value: Any) -> int | None:
    """Dollars as the server sent them (Decimal, str, int, or a float from parsed JSON) in nano-dollars.

    Lenient, because it reads the wire: unreadable values give None rather than failing the
    agent. A float goes through its shortest repr, which is the literal the server wrote.
    Sub-nano digits round up: a cost is never under-reported.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    return int((amount * NANOS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def setting_nanos(value: Decimal | str | int | None, name: str) -> int | None:
    """A dollar amount the caller configured (a threshold), strictly: no floats, not negative.

    Strict, because it is code the caller wrote: `0.1` as a float is not the amount they
    meant, and a typo should fail at construction rather than silently disable a floor.
    """
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, str or int of dollars, not a float")
    nanos = usd_nanos(value)
    if nanos is None or nanos < 0:
        raise ValueError(f"{name} must be a non-negative amount of dollars")
    return nanos
