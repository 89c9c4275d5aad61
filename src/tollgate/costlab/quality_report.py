"""`cost quality`'s text table and JSON, next to the comparison post's published column."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from tollgate.catalog.reference import BENCHMARKS
from tollgate.costlab.quality import QualityTable
from tollgate.costlab.table import render_table

# The comparison post's "Cost per quality point" column (MMLU-Pro, input price), as printed.
PUBLISHED_MMLU_PRO_COST_PER_POINT = {
    "qwen3.5-35b-a3b": Decimal("0.003"),
    "qwen3.5-397b-a17b": Decimal("0.006"),
    "gpt-5.4": Decimal("0.028"),
    "claude-opus-4.6": Decimal("0.061"),
}
PUBLISHED_QUANTUM = Decimal("0.001")


def published_column(table: QualityTable) -> dict[str, Decimal]:
    """The post's figures, when the table is on the post's basis (MMLU-Pro, input price)."""
    if table.benchmark == "mmlu_pro" and table.basis == "input":
        return PUBLISHED_MMLU_PRO_COST_PER_POINT
    return {}


def render_quality_text(table: QualityTable) -> str:
    bench = BENCHMARKS[table.benchmark]
    basis = table.basis if table.basis != "blended" else f"blended, {table.output_share} output"
    published = published_column(table)
    lines = [f"Cost per {bench} point ({basis} price, USD per point per million tokens), cheapest first", ""]
    rows = []
    for row in table.rows:
        post = published.get(row.model.id)
        rows.append([
            row.model.name,
            f"{row.score}%",
            _price(row.price_usd_per_mtok),
            f"${row.cost_per_point_display()}",
            f"{table.times_best(row):.1f}x",
        ] + ([f"${post}" if post is not None else ""] if published else []))
    headers = ["model", bench, f"$/M {table.basis}", "$ per point", "vs best"] + (["post"] if published else [])
    lines.append(render_table(headers, rows, right=(1, 2, 3, 4, 5)))
    if published:
        lines.append("  'post' is the comparison blog post's column, rounded there to $0.001.")
    if table.skipped:
        lines.append("")
        lines.append("  Left out: " + "; ".join(f"{m.name} ({why})" for m, why in table.skipped) + ".")
    return "\n".join(lines)


def quality_json(table: QualityTable) -> dict:
    published = published_column(table)
    return {
        "benchmark": table.benchmark,
        "basis": table.basis,
        "output_share": str(table.output_share) if table.basis == "blended" else None,
        "rows": [
            {
                "model": row.model.id,
                "name": row.model.name,
                "score": str(row.score),
                "price_usd_per_mtok": str(row.price_usd_per_mtok),
                "cost_per_point_usd": str(row.cost_per_point_display()),
                "times_best": f"{table.times_best(row):.3f}",
                "published": str(published[row.model.id]) if row.model.id in published else None,
            }
            for row in table.rows
        ],
        "skipped": [{"model": m.id, "reason": why} for m, why in table.skipped],
    }


def _price(usd: Decimal) -> str:
    """Dollars with at least cents: 2.5 -> '$2.50', 0.2284 -> '$0.2284'."""
    cents = usd.quantize(Decimal("0.01"))
    return f"${cents}" if cents == usd else f"${usd.normalize():f}"


def rounded_like_post(value: Decimal) -> Decimal:
    """A cost per point rounded the way the post prints it ($0.001, half up)."""
    return value.quantize(PUBLISHED_QUANTUM, rounding=ROUND_HALF_UP)
