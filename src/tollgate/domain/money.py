"""Exact money: integer nano-dollars everywhere, Decimal only at the edges.

A float never holds a price or a balance. Prices per million tokens are kept as
nano-dollars per million tokens, so a request's cost is an integer product
divided once, rounding up, at the very end.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
TOKENS_PER_MTOK = 1_000_000
MAX_USD = 10**9  # a billion dollars is 10^18 nano-dollars: still inside a signed 64-bit integer


class MoneyError(ValueError):
    """A value that cannot be read as an exact amount of dollars."""


def usd_to_nanos(value: object) -> int:
    """Read dollars (str, int or Decimal; never float) as whole nano-dollars.

    Floats are refused because `0.1` is not exact; TOML and JSON callers convert
    the literal's text instead (see `usd_from_json`).
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"{value!r} is not an exact amount; give it as a string or integer")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise MoneyError(f"{value!r} is not a number") from exc
    if not amount.is_finite():
        raise MoneyError(f"{value!r} is not a finite amount")
    if abs(amount) > MAX_USD:
        raise MoneyError(f"{value!r} is larger than {MAX_USD} dollars")
    nanos = amount * NANOS_PER_USD
    if nanos != nanos.to_integral_value():
        raise MoneyError(f"{value!r} has more than 9 decimal places")
    return int(nanos)


def usd_from_json(value: object) -> int:
    """Dollars from a parsed JSON or TOML value, where numbers may arrive as floats.

    The float's shortest repr is the literal the user wrote (`0.14` -> "0.14"),
    so going through `repr` recovers the exact decimal they meant.
    """
    if isinstance(value, float):
        return usd_to_nanos(repr(value))
    return usd_to_nanos(value)


def nanos_to_decimal(nanos: int) -> Decimal:
    """Nano-dollars as an exact Decimal number of dollars."""
    return Decimal(nanos).scaleb(-9)


def format_usd(nanos: int) -> str:
    """Dollars as plain text with no trailing zeros beyond cents: 140000000 -> '0.14'.

    Integer arithmetic only (it runs for several headers on every request).
    """
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), NANOS_PER_USD)
    digits = f"{frac:09d}".rstrip("0")
    if len(digits) < 2:
        digits = digits.ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def token_cost(tokens: int, nanos_per_mtok: int) -> int:
    """Exact cost of `tokens` at a price in nano-dollars per million, rounded up to a nano."""
    return -((-tokens * nanos_per_mtok) // TOKENS_PER_MTOK)


def request_cost(input_tokens: int, output_tokens: int, input_per_mtok: int, output_per_mtok: int) -> int:
    """Cost of one request in nano-dollars: both parts summed, then rounded up once."""
    numerator = input_tokens * input_per_mtok + output_tokens * output_per_mtok
    return -((-numerator) // TOKENS_PER_MTOK)


def affordable_tokens(budget_nanos: int, nanos_per_mtok: int) -> int:
    """The most tokens at this price whose rounded-up cost fits in `budget_nanos`."""
    if nanos_per_mtok <= 0:
        return 1 << 62
    if budget_nanos <= 0:
        return 0
    return budget_nanos * TOKENS_PER_MTOK // nanos_per_mtok
