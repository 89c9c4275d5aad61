"""What differs between SQLite's and PostgreSQL's SQL for the reads both stores share.

The query builders (`usage_queries.py`, `usage_series.py`, `request_log.py`, `alert_rows.py`) write one
SQL text for both databases, with `?` placeholders, and ask a `Dialect` only for the few fragments
that differ: flooring a REAL time to its whole second (SQLite's CAST truncates, PostgreSQL's rounds)
and SQLite's unary-plus planner hints (PostgreSQL has no unary plus for text, and needs no hint).
`numbered` turns the `?` placeholders into asyncpg's `$1..$n`. Integer division and modulo of
integers behave alike in both (times are never negative, so truncation is the floor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Query = tuple[str, list[Any]]  # SQL with `?` placeholders, and its arguments in order


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    second_of: str  # a format for `created_at` floored to its whole second, as an integer: `{}` is the column
    hints: bool  # write SQLite's `+column` planner hints

    def second(self, column: str) -> str:
        return self.second_of.format(column)

    def hint(self, column: str) -> str:
        """`column` kept off the index choice (SQLite: `+column`); plain where the planner needs no hint."""
        return f"+{column}" if self.hints else column


SQLITE = Dialect("sqlite", "CAST({} AS INTEGER)", hints=True)
POSTGRES = Dialect("postgresql", "CAST(floor({}) AS BIGINT)", hints=False)


def numbered(sql: str) -> str:
    """SQL with `?` placeholders -> asyncpg's `$1`, `$2`, ... (a `?` inside a quoted literal is left alone)."""
    out: list[str] = []
    n = 0
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)
