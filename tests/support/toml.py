"""Writing the small TOML configs the tests need (the standard library only reads TOML)."""

from __future__ import annotations

import json
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _scalars(table: dict) -> list[str]:
    return [f"{k} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict) and not _is_tables(v)]


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps(doc: dict, prefix: str = "") -> str:
    lines = _scalars(doc) if not prefix else []
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines.append(f"\n[{name}]")
            lines += _scalars(value)
            nested = {k: v for k, v in value.items() if isinstance(v, dict) or _is_tables(v)}
            if nested:
                lines.append(dumps(nested, f"{name}."))
        elif _is_tables(value):
            for item in value:
                lines.append(f"\n[[{name}]]")
                lines += _scalars(item)
                nested = {k: v for k, v in item.items() if isinstance(v, dict) or _is_tables(v)}
                if nested:  # e.g. [[models.tiers]]: belongs to the item just written
                    lines.append(dumps(nested, f"{name}."))
    return "\n".join(lines) + "\n"
