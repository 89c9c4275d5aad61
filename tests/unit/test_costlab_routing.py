from tollgate.catalog.reference import load_reference_catalog
from tollgate.costlab.routing import (
    DEFAULT_BASELINE,
    DEFAULT_ROUTES,
    Price,
    WorkItem,
    catalog_prices,
    reference_workload,
    replay,
)


def test_reference_mix_is_the_guides_workload():
    items = reference_workload()
    assert len(items) == 1000
    assert {c: sum(1 for i in items if i.label == c) for c in ("simple", "general", "reasoning", "code")} == {
        "simple": 600, "general": 300, "reasoning": 70, "code": 30}
    assert all((i.input_tokens, i.output_tokens) == (500, 200) for i in items)


def test_routed_cost_against_one_general_model_uses_catalog_prices():
    catalog = load_reference_catalog()
    routes = catalog_prices(catalog, DEFAULT_ROUTES, stand_in=DEFAULT_BASELINE)
    baseline = catalog_prices(catalog, {"general": DEFAULT_BASELINE})["general"]
    report = replay(reference_workload(), routes, baseline)

    def one(model_id):  # 500 in + 200 out, rounded up once, in nano-dollars
        m = catalog.get(model_id)
        if m.output_per_mtok is None:  # no published price: priced as the baseline
            m = catalog.get(DEFAULT_BASELINE)
        return -(-(500 * m.input_per_mtok + 200 * m.output_per_mtok) // 1_000_000)

    expected = 600 * one("llama-3.1-8b") + 300 * one("deepseek-v3.2") + 70 * one("deepseek-r1") + 30 * one(
        "qwen3-coder-480b-a35b")
    assert report.routed_cost == expected
    assert report.baseline_cost == 1000 * one("deepseek-v3.2")
    assert report.lines["simple"].model == "llama-3.1-8b" and report.lines["simple"].requests == 600
    assert 0 < report.savings < 1 and not report.lower_bound


def test_classifier_misroutes_are_priced_where_they_went():
    items = [WorkItem("code", 100, 100, {"messages": [{"role": "user", "content": "x"}]})] * 3
    routes = {"general": Price("g", 10**9, 10**9), "code": Price("c", 5 * 10**9, 5 * 10**9)}
    report = replay(items, routes, Price("g", 10**9, 10**9), classify=lambda request: "general")
    assert report.misroutes == {("code", "general"): 3}
    assert report.correct == 0 and report.total == 3
    assert report.routed_cost == report.baseline_cost == 3 * 200 * 1000


def test_the_cost_routing_command_prints_the_comparison():
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tollgate", "cost", "routing", "--json"], capture_output=True,
                         text=True, check=True).stdout
    data = json.loads(out)
    catalog = load_reference_catalog()
    routes = catalog_prices(catalog, DEFAULT_ROUTES, stand_in=DEFAULT_BASELINE)
    baseline = catalog_prices(catalog, {"general": DEFAULT_BASELINE})["general"]
    expected = replay(reference_workload(), routes, baseline)
    assert data["routed_cost_nanos"] == expected.routed_cost
    assert data["baseline_cost_nanos"] == expected.baseline_cost
    unpriced = {c for c, m in DEFAULT_ROUTES.items() if catalog.get(m).output_per_mtok is None}
    assert data["stand_ins"] == {c: DEFAULT_BASELINE for c in unpriced} and "code" in unpriced
    text = subprocess.run([sys.executable, "-m", "tollgate", "cost", "routing"], capture_output=True, text=True,
                          check=True).stdout
    assert "savings:" in text and "llama-3.1-8b" in text
