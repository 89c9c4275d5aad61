"""The labelled request data: reading a `train.jsonl`-style file, and its stable split.

The split is by a hash of the text and a seed, so the held-out rows stay the same when
rows are added elsewhere in the file; training and evaluation both read it from here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tollgate.config.schema import CATEGORIES

HELD_OUT_PCT = 10  # test split, for `router eval`; never used for a choice
VAL_PCT = 10  # validation split, for choices and the temperature


def load_labeled(path: Path) -> list[dict[str, Any]]:
    """Rows of a `train.jsonl`-style file: {"text", "label", ...}."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if row.get("label") in CATEGORIES and isinstance(row.get("text"), str):
                    rows.append(row)
    return rows


def split_of(text: str, seed: int) -> str:
    """'test', 'val' or 'train', from a hash of the text and the seed."""
    h = hashlib.blake2b(f"{seed}\x00{text}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    bucket = int.from_bytes(h, "big") % 100
    return "test" if bucket < HELD_OUT_PCT else "val" if bucket < HELD_OUT_PCT + VAL_PCT else "train"


def split_rows(rows: list[dict[str, Any]], seed: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for row in rows:
        out[split_of(row["text"], seed)].append(row)
    return out
