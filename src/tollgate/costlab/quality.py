"""Cost per quality point: dollars per million tokens divided by a benchmark score.

The comparison post's table divides each model's input price by its MMLU-Pro score
("$ per point per M tokens"). That is the default basis here. Prices are exact
nano-dollars and the quotient is an exact Decimal, quantized only for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from tollgate.catalog.reference import BENCHMARKS, ReferenceModel
from tollgate.domain.money import NANOS_PER_USD

BASES = ("input", "output", "blended")
# Cost per point is shown to a millionth of a dollar: enough to separate $0.0026 from $0.0032.
PER_POINT_QUANTUM = Decimal("0.000001")


@dataclass(frozen=True)
class QualityRow:
    model: ReferenceModel
    benchmark: str
    score: Decimal
    price_usd_per_mtok: Decimal  # the basis price, exact
    cost_per_point: Decimal  # dollars per score point per million tokens, exact

    def cost_per_point_display(self, quantum: Decimal = PER_POINT_QUANTUM) -> Decimal:
        return self.cost_per_point.quantize(quantum, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class QualityTable:
    benchmark: str
    basis: str
    output_share: Decimal
    rows: tuple[QualityRow, ...]  # cheapest per point first
    skipped: tuple[tuple[ReferenceModel, str], ...]  # (model, why it has no row)

    @property
    def best(self) -> QualityRow | None:
        return self.rows[0] if self.rows else None

    def times_best(self, row: QualityRow) -> Decimal:
        """How many times the cheapest row's cost per point this row pays."""
        best = self.best
        if best is None or best.cost_per_point == 0:
            return Decimal(0)
        return row.cost_per_point / best.cost_per_point


def basis_price(model: ReferenceModel, basis: str, output_share: Decimal) -> Decimal | None:
    """The model's price in dollars per million tokens on a basis, or None when unknown.

    blended: (1 - s) x input + s x output, s being the output share of tokens (an agent's
    is ~0.04, a chat's nearer 0.3).
    """
    if basis not in BASES:
        raise ValueError(f"basis {basis!r} is not one of {', '.join(BASES)}")
    scale = Decimal(NANOS_PER_USD)
    if basis == "input":
        return None if model.input_per_mtok is None else Decimal(model.input_per_mtok) / scale
    if basis == "output":
        return None if model.output_per_mtok is None else Decimal(model.output_per_mtok) / scale
    if model.input_per_mtok is None or model.output_per_mtok is None:
        return None
    return ((1 - output_share) * model.input_per_mtok + output_share * model.output_per_mtok) / scale


def cost_per_point(price_usd_per_mtok: Decimal, score: Decimal) -> Decimal:
    if score <= 0:
        raise ValueError("a score of zero has no cost per point")
    return price_usd_per_mtok / score


def quality_table(
    models: Iterable[ReferenceModel],
    benchmark: str = "mmlu_pro",
    basis: str = "input",
    output_share: Decimal = Decimal("0.25"),
) -> QualityTable:
    """Every model with a score and a price on the basis, cheapest per point first."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark {benchmark!r} is not one of {', '.join(BENCHMARKS)}")
    if not 0 <= output_share <= 1:
        raise ValueError("the output share is a fraction from 0 to 1")
    rows, skipped = [], []
    for model in models:
        score = model.score(benchmark)
        price = basis_price(model, basis, output_share)
        if model.has("embeddings") and not model.has("chat"):
            continue  # embedding models have no generative benchmark scores to compare
        if score is None or score == 0:
            skipped.append((model, f"no {BENCHMARKS[benchmark]} score"))
        elif price is None:
            skipped.append((model, f"no {basis} price"))
        else:
            rows.append(QualityRow(model, benchmark, score, price, cost_per_point(price, score)))
    rows.sort(key=lambda r: (r.cost_per_point, -r.score))
    return QualityTable(benchmark, basis, output_share, tuple(rows), tuple(skipped))
