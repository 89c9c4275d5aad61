"""Printing results: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from tollgate.costlab.table import render_table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """Rows (JSON views) as an aligned text table; `columns` are (key, heading) pairs.

    The layout is the cost lab's `render_table`, flush left, so every table the CLI prints looks alike.
    """
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    return render_table([heading for _, heading in columns], cells, indent="")


def emit(data: Any, as_json: bool, columns: Sequence[tuple[str, str]] | None = None, title: str | None = None) -> None:
    """`data` as JSON for scripts, else as a table (with `columns`), `key  value` lines (a dict) or text."""
    if as_json:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if title:
        print(title)
    if columns is not None:
        print(table(data if isinstance(data, list) else [data], columns))
    elif isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            print(f"{key.ljust(width)}  {_cell(value)}")
    else:
        print(data)
