"""Plain-text tables for people: aligned columns, numbers to the right."""

from __future__ import annotations

from typing import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = (),
                 indent: str = "  ") -> str:
    """Columns padded to their widest cell; column indexes in `right` align right."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        padded = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)]
        lines.append(indent + "  ".join(padded).rstrip())
        if n == 0:
            lines.append((indent + "  ".join("-" * w for w in widths)).rstrip())
    return "\n".join(lines)


def percent(value, places: int = 1) -> str:
    """A Decimal fraction as a percentage: 0.9637 -> '96.4%'."""
    return f"{value * 100:.{places}f}%"


def signed_percent(value, places: int = 1) -> str:
    return f"{value * 100:+.{places}f}%"
