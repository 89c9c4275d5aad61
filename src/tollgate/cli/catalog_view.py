"""The reference catalog as a table for people and as JSON for scripts (`models catalog`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from tollgate.catalog.reference import BENCHMARKS, ReferenceModel
from tollgate.domain.money import format_usd

_SHORT = {"mmlu_pro": "MMLU-Pro", "gpqa": "GPQA", "livecodebench": "LCB", "hle": "HLE",
          "hle_tools": "HLE+tools", "swe_bench_verified": "SWE-bench"}


def model_json(model: ReferenceModel) -> dict:
    """One entry with money as exact strings (USD per million tokens) and nano-dollars."""
    def price(nanos: int | None) -> dict | None:
        return None if nanos is None else {"usd_per_mtok": format_usd(nanos), "nanos_per_mtok": nanos}

    return {
        "id": model.id,
        "name": model.name,
        "family": model.family,
        "open_weights": model.open_weights,
        "aliases": list(model.aliases),
        "capabilities": sorted(model.capabilities),
        "input_price": price(model.input_per_mtok),
        "output_price": price(model.output_per_mtok),
        "context_tokens": model.context_tokens,
        "max_output_tokens": model.max_output_tokens,
        "speed_tokens_per_s": model.speed_tokens_per_s,
        "ttft_ms": model.ttft_ms,
        "params_total_b": _num(model.params_total_b),
        "params_active_b": _num(model.params_active_b),
        "embedding_dimensions": model.embedding_dimensions,
        "benchmarks": {name: _num(score) for name, score in model.benchmarks.items()},
        "source": model.source,
        "notes": model.notes,
    }


def catalog_json(models: Iterable[ReferenceModel]) -> dict:
    return {"models": [model_json(m) for m in models], "benchmarks": dict(BENCHMARKS)}


def render_catalog(models: Iterable[ReferenceModel]) -> str:
    from tollgate.costlab.table import render_table

    rows = []
    for m in models:
        price = "-"
        if m.input_per_mtok is not None:
            price = f"${format_usd(m.input_per_mtok)}"
            price += f" / ${format_usd(m.output_per_mtok)}" if m.output_per_mtok is not None else " / ?"
        size = _params(m.params_total_b) if m.params_total_b is not None else "-"
        if m.params_active_b is not None:
            size += f" ({_params(m.params_active_b)} act.)"
        scores = " ".join(f"{_SHORT[b]} {_num(s)}" for b, s in m.benchmarks.items())
        rows.append([
            m.id + ("" if m.open_weights else " *"),
            price,
            f"{m.context_tokens:,}" if m.context_tokens else "-",
            str(m.speed_tokens_per_s) if m.speed_tokens_per_s else "-",
            size,
            ",".join(sorted(m.capabilities)),
            scores or "-",
        ])
    table = render_table(["model", "$/M in / out", "context", "tok/s", "params", "capabilities", "scores (%)"],
                         rows, right=(2, 3))
    return (table + "\n  * proprietary comparison point. '?' = not in the reference material."
            "\n  Sources per entry: tollgate models catalog --json.")


def _params(billions: Decimal) -> str:
    """Parameter counts as people write them: 8B, 0.335B, 1T."""
    if billions >= 1000:
        return f"{(billions / 1000).normalize():f}T"
    return f"{billions.normalize():f}B"


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")
