"""Score a classifier on a labelled file: accuracy, per-class precision and recall, the confusion
matrix and per-request latency (`tollgate router eval`).

Two line formats are read, and may be mixed:

* `{"text": ..., "label": ...}` — the training data format; the text is sent as one user turn.
* `{"request": {<chat or completions body>}, "label": ...}` — real-traffic format, as written by
  hand and as exported by `tollgate router sample` for labelling. Lines whose label is missing or
  not a category (not yet labelled) are skipped and counted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tollgate.config.schema import CATEGORIES
from tollgate.proxy.routing.classifier import RequestClassifier
from tollgate.training.dataset import split_of


@dataclass(frozen=True, slots=True)
class EvalItem:
    body: Any
    label: str


def load_items(path: Path, *, split: str | None = None, seed: int = 0) -> tuple[list[EvalItem], int]:
    """Labelled items of a file, and how many lines were skipped (unlabelled or unreadable).

    With `split` ("heldout", "val" or "train"), only `text` rows of that split of the training
    data are kept, by the same hash rule as `tollgate router train --seed`.
    """
    want = {"heldout": "test", "test": "test", "val": "val", "train": "train"}.get(split or "", None)
    items: list[EvalItem] = []
    skipped = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            label = row.get("label") if isinstance(row, dict) else None
            if label not in CATEGORIES:
                skipped += 1
                continue
            if isinstance(row.get("text"), str):
                if want is not None and split_of(row["text"], seed) != want:
                    continue
                items.append(EvalItem({"messages": [{"role": "user", "content": row["text"]}]}, label))
            elif "request" in row and want is None:
                items.append(EvalItem(row["request"], label))
            elif want is None:
                skipped += 1
    return items, skipped


def _percentile_us(ns: np.ndarray, q: float) -> float:
    return round(float(np.percentile(ns, q)) / 1000.0, 1) if len(ns) else 0.0


def evaluate(clf: RequestClassifier, items: list[EvalItem], *, warmup: int = 20) -> dict[str, Any]:
    """Classify every item once (timed), after a few untimed warm-up calls."""
    for item in items[:warmup]:
        clf.classify(item.body)
    k = len(CATEGORIES)
    confusion = np.zeros((k, k), dtype=np.int64)  # rows: true label, columns: predicted
    ns = np.zeros(len(items), dtype=np.int64)
    errors = []
    for i, item in enumerate(items):
        t0 = time.perf_counter_ns()
        pred, conf = clf.classify(item.body)
        ns[i] = time.perf_counter_ns() - t0
        confusion[CATEGORIES.index(item.label), CATEGORIES.index(pred)] += 1
        if pred != item.label:
            errors.append({"index": i, "label": item.label, "predicted": pred, "confidence": round(conf, 3)})
    total = int(confusion.sum())
    per_class = {}
    for j, name in enumerate(CATEGORIES):
        tp = int(confusion[j, j])
        predicted, actual = int(confusion[:, j].sum()), int(confusion[j].sum())
        per_class[name] = {
            "precision": round(tp / predicted, 4) if predicted else None,
            "recall": round(tp / actual, 4) if actual else None,
            "support": actual,
        }
    return {
        "n": total,
        "accuracy": round(float(np.trace(confusion)) / total, 4) if total else None,
        "per_class": per_class,
        "confusion": {"labels": list(CATEGORIES), "rows_true_cols_predicted": confusion.tolist()},
        "latency_us": {"p50": _percentile_us(ns, 50), "p90": _percentile_us(ns, 90), "p99": _percentile_us(ns, 99)},
        "errors": errors,
    }


def format_report(result: dict[str, Any], *, skipped: int = 0) -> str:
    """The result as tables for people."""
    lines = [f"requests: {result['n']}" + (f"  (skipped unlabelled/unreadable: {skipped})" if skipped else "")]
    if result["accuracy"] is not None:
        lines.append(f"accuracy: {result['accuracy']:.4f}")
    lines += ["", f"{'category':<10} {'precision':>9} {'recall':>7} {'support':>8}"]
    for name, m in result["per_class"].items():
        p = "-" if m["precision"] is None else f"{m['precision']:.3f}"
        r = "-" if m["recall"] is None else f"{m['recall']:.3f}"
        lines.append(f"{name:<10} {p:>9} {r:>7} {m['support']:>8}")
    labels = result["confusion"]["labels"]
    lines += ["", "confusion (rows: true, columns: predicted)", " " * 10 + "".join(f"{lab[:9]:>10}" for lab in labels)]
    for lab, row in zip(labels, result["confusion"]["rows_true_cols_predicted"]):
        lines.append(f"{lab:<10}" + "".join(f"{v:>10}" for v in row))
    lat = result["latency_us"]
    lines += ["", f"latency per request (µs, feature extraction included): p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}"]
    return "\n".join(lines)
