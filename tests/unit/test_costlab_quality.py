"""Cost per quality point: the catalog's table pinned, the post's column matched, and the SVG plot."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from tollgate.catalog import load_reference_catalog
from tollgate.costlab.quality import basis_price, quality_table
from tollgate.costlab.quality_report import render_quality_text, rounded_like_post
from tollgate.costlab.svg_plot import render_quality_svg

# $/M input divided by MMLU-Pro, worked by hand from the catalog's published inputs, to $0.000001.
EXPECTED_MMLU_PRO_INPUT = [
    ("qwen3.5-35b-a3b", "0.002579"),    # 0.22 / 85.3
    ("deepseek-v3.2", "0.003176"),      # 0.27 / 85
    ("qwen3.5-397b-a17b", "0.006150"),  # 0.54 / 87.8
    ("gpt-5.4", "0.028249"),            # 2.50 / 88.5
    ("claude-opus-4.6", "0.060976"),    # 5.00 / 82.0
]
# The comparison post's "Cost per quality point" column, as printed.
POST_COLUMN = {"qwen3.5-35b-a3b": "0.003", "qwen3.5-397b-a17b": "0.006", "gpt-5.4": "0.028", "claude-opus-4.6": "0.061"}


@pytest.fixture(scope="module")
def catalog():
    return load_reference_catalog()


def test_mmlu_pro_table_is_pinned(catalog):
    table = quality_table(catalog)
    got = [(row.model.id, str(row.cost_per_point_display())) for row in table.rows]
    assert got == EXPECTED_MMLU_PRO_INPUT


def test_table_matches_the_posts_column(catalog):
    rows = {row.model.id: row for row in quality_table(catalog).rows}
    for model_id, published in POST_COLUMN.items():
        assert rounded_like_post(rows[model_id].cost_per_point) == Decimal(published), model_id


def test_cost_per_point_is_exact_decimal(catalog):
    row = next(r for r in quality_table(catalog).rows if r.model.id == "gpt-5.4")
    assert isinstance(row.cost_per_point, Decimal)
    assert row.cost_per_point * Decimal("88.5") == Decimal("2.5")


def test_ratios_to_the_best(catalog):
    table = quality_table(catalog)
    opus = next(r for r in table.rows if r.model.id == "claude-opus-4.6")
    # (5.00 / 82.0) / (0.22 / 85.3) = 23.64...: the post's "20x" comes from its rounded column.
    assert table.times_best(opus).quantize(Decimal("0.01")) == Decimal("23.64")
    assert table.times_best(table.best) == 1


def test_models_without_score_or_price_are_listed_as_skipped(catalog):
    table = quality_table(catalog)
    skipped = {m.id: why for m, why in table.skipped}
    assert skipped["deepseek-r1"] == "no MMLU-Pro score"
    assert "bge-large" not in skipped  # embedding models are not compared on generative scores
    gpqa = quality_table(catalog, "gpqa", "output")
    skipped = {m.id: why for m, why in gpqa.skipped}
    assert skipped["gpt-5.4"] == "no output price"
    assert [r.model.id for r in gpqa.rows] == ["claude-opus-4.6"]


def test_blended_basis(catalog):
    opus = catalog.get("claude-opus-4.6")
    assert basis_price(opus, "blended", Decimal("0.04")) == Decimal("0.96") * 5 + Decimal("0.04") * 25
    assert basis_price(catalog.get("gpt-5.4"), "blended", Decimal("0.04")) is None
    with pytest.raises(ValueError):
        quality_table(catalog, "vibes")
    with pytest.raises(ValueError):
        quality_table(catalog, "mmlu_pro", "blended", Decimal("1.5"))


def test_text_table_shows_the_post_column(catalog):
    text = render_quality_text(quality_table(catalog))
    assert "$0.002579" in text and "$0.061" in text and "Left out" in text


def test_svg_is_well_formed_and_labels_every_row(catalog):
    table = quality_table(catalog)
    svg = render_quality_svg(table)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    texts = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    for row in table.rows:
        assert row.model.name in texts
    assert "$0.0026/pt" in texts  # Qwen3.5 35B's label, two significant figures
    dots = [c for c in root.iter(f"{ns}circle") if c.get("r") == "7"]
    assert len(dots) == len(table.rows)


def test_svg_with_no_rows_still_renders(catalog):
    empty = quality_table([catalog.get("kimi-k2.5")])
    root = ET.fromstring(render_quality_svg(empty))
    assert "No model" in " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


def test_cli_quality_json_and_svg(tmp_path):
    out = tmp_path / "quality.svg"
    result = subprocess.run([sys.executable, "-m", "tollgate", "cost", "quality", "--json", "--svg", str(out)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(r["model"], r["cost_per_point_usd"]) for r in data["rows"]] == EXPECTED_MMLU_PRO_INPUT
    assert {r["model"]: r["published"] for r in data["rows"] if r["published"]} == POST_COLUMN
    ET.parse(out)  # a well-formed SVG file was written
    bad = subprocess.run([sys.executable, "-m", "tollgate", "cost", "quality", "--benchmark", "vibes"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "vibes" in bad.stderr
