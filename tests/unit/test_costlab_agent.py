"""The agent-task simulator: its mechanics, and the agent-cost post's figures reproduced within 3%."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from tollgate.config.defaults import default_plans
from tollgate.costlab.agent_sim import AgentTask, HistoryPolicy, cap_for_accumulation, simulate, spread
from tollgate.costlab.pricing import PricePoint, plan_fit, price_flow, windows_per_day
from tollgate.costlab.reference_task import (
    DEEPSEEK_AS_QUOTED,
    OPUS_AS_QUOTED,
    PUBLISHED,
    REFERENCE_HISTORY_CAP,
    REFERENCE_TASK,
    reproduce,
)

TOLERANCE = Decimal("0.03")
NANOS = 1_000_000_000

# Published in the agent-cost post; typed here from the post, independently of the code.
POST = {
    "context accumulation": 280_000,
    "system prompt (x38)": 156_000,
    "tool outputs": 70_000,
    "agent output": 19_000,
    "total": 525_000,
}


def _close(value, published) -> bool:
    return abs(Decimal(value) - Decimal(published)) <= TOLERANCE * abs(Decimal(published))


@pytest.fixture(scope="module")
def flow():
    return simulate(REFERENCE_TASK)


def test_reference_breakdown_within_three_percent(flow):
    got = {
        "context accumulation": flow.context_accumulation,
        "system prompt (x38)": flow.system_prompt_resent,
        "tool outputs": flow.tool_outputs,
        "agent output": flow.agent_output,
        "total": flow.total_tokens,
    }
    for label, published in POST.items():
        assert _close(got[label], published), (label, got[label], published)
    assert _close(flow.system_prompt_resent / 38, 4_100)
    assert _close(flow.overhead_share, Decimal("0.96"))
    assert flow.total_tokens == flow.context_accumulation + flow.system_prompt_resent + flow.tool_outputs + flow.agent_output


def test_reference_costs_and_months_within_three_percent(flow):
    opus = price_flow(flow, PricePoint("opus", 15 * NANOS, 75 * NANOS))
    deepseek = price_flow(flow, PricePoint("v3.2", 270_000_000, 1_100_000_000))
    assert not opus.lower_bound and not deepseek.lower_bound
    assert _close(opus.nanos, 9_180_000_000)
    assert _close(deepseek.nanos, 160_000_000)
    assert _close(opus.monthly(5), 1_377 * NANOS)
    assert _close(opus.monthly(20), 5_508 * NANOS)
    assert _close(deepseek.monthly(20), 96 * NANOS)
    # The cost is the exact integer price of the flow's tokens.
    assert opus.nanos == (flow.input_tokens * 15 * NANOS + flow.output_tokens * 75 * NANOS) // 1_000_000


def test_reproduce_reports_every_figure_within_tolerance(flow):
    checks = reproduce(flow)
    assert len(checks) == 11
    for check in checks:
        assert abs(check.deviation) <= TOLERANCE, (check.label, check.deviation)


def test_the_history_cap_is_read_back_from_the_published_280k():
    cap = cap_for_accumulation(REFERENCE_TASK, PUBLISHED.context_accumulation)
    assert abs(cap - REFERENCE_HISTORY_CAP) <= REFERENCE_HISTORY_CAP // 100
    assert simulate(replace(REFERENCE_TASK, history=HistoryPolicy("cap", cap_tokens=cap))).context_accumulation >= 280_000
    assert simulate(replace(REFERENCE_TASK, history=HistoryPolicy("cap", cap_tokens=cap - 1))).context_accumulation < 280_000


def test_keeping_everything_is_quadratic_and_far_above_the_post():
    # 10 steps, 100 tool + 50 output tokens a step: step k re-sends 150 x (k - 1).
    task = AgentTask(steps=10, system_prompt_tokens=10, tool_output_tokens=1_000, agent_output_tokens=500)
    flow = simulate(task)
    assert flow.context_accumulation == 150 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9)
    assert flow.system_prompt_resent == 100
    assert flow.peak_prompt == 10 + 150 * 9 + 100
    full_reference = simulate(replace(REFERENCE_TASK, history=HistoryPolicy()))
    assert full_reference.context_accumulation > 5 * POST["context accumulation"]


def test_window_cap_and_summary_policies():
    task = AgentTask(steps=10, system_prompt_tokens=10, tool_output_tokens=1_000, agent_output_tokens=500)
    window = simulate(replace(task, history=HistoryPolicy("window", window_steps=1)))
    assert window.context_accumulation == 150 * 9
    cap = simulate(replace(task, history=HistoryPolicy("cap", cap_tokens=200)))
    assert cap.context_accumulation == 0 + 150 + 200 * 8
    summary = simulate(replace(task, history=HistoryPolicy("summarise", summarise_at=400, summary_tokens=50)))
    # History 0,150,300,450 -> summarised before step 4 (input 10 + 450, output 50), then 50,200,350,500 ...
    histories = [s.history for s in summary.steps]
    assert histories == [0, 150, 300, 50, 200, 350, 50, 200, 350, 50]
    calls = [s for s in summary.steps if s.summary_input]
    assert [(c.step, c.summary_input, c.summary_output) for c in calls] == [(4, 460, 50), (7, 510, 50), (10, 510, 50)]
    assert summary.model_calls == 13
    assert summary.summarisation == 460 + 510 + 510 + 3 * 50
    assert summary.total_tokens == summary.input_tokens + summary.output_tokens


def test_trimming_lowers_the_reference_total():
    totals = [simulate(replace(REFERENCE_TASK, history=HistoryPolicy.parse(p))).total_tokens
              for p in ("full", "cap:20000", "cap:7800", "window:1", "cap:0")]
    assert totals == sorted(totals, reverse=True)
    assert totals[-1] == 155_800 + 70_000 + 19_000


def test_spread_is_even_and_exact():
    parts = spread(70_000, 38)
    assert sum(parts) == 70_000 and max(parts) - min(parts) <= 1
    assert spread(5, 5) == [1] * 5 and spread(0, 3) == [0, 0, 0]


@pytest.mark.parametrize("bad", ["", "cap", "window:x", "summarise:10", "summarise:100:200", "forget:3"])
def test_history_policy_parse_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        HistoryPolicy.parse(bad)


def test_history_policy_round_trips():
    for spec in ("full", "window:3", "cap:7800", "summarise:20000:2000"):
        assert HistoryPolicy.parse(spec).spec() == spec


def test_price_without_output_is_a_lower_bound(flow):
    cost = price_flow(flow, PricePoint("in only", 2_500_000_000, None))
    assert cost.lower_bound
    assert cost.nanos == -(-flow.input_tokens * 2_500_000_000 // 1_000_000)


def test_price_point_parse():
    point = PricePoint.parse("opus=15/75")
    assert (point.label, point.input_per_mtok, point.output_per_mtok) == ("opus", 15 * NANOS, 75 * NANOS)
    assert PricePoint.parse("$0.27/$1.10").output_per_mtok == 1_100_000_000
    with pytest.raises(ValueError):
        PricePoint.parse("15")


def test_flat_plans_against_the_reference_task(flow):
    plans = {p.slug: p for p in default_plans()}
    deepseek = price_flow(flow, DEEPSEEK_AS_QUOTED)
    pro = plan_fit(plans["pro"], deepseek)
    standard = plan_fit(plans["standard"], deepseek)
    assert pro.windows_per_day == 5
    assert pro.tasks_per_day == (5 * 420_000_000) // deepseek.nanos
    assert pro.covers(5) and not pro.covers(20)
    assert standard.tasks_per_window == 0 and standard.window_share > 1
    assert plan_fit(plans["pro"], price_flow(flow, OPUS_AS_QUOTED)).tasks_per_day == 0
    assert pro.price_per_task(20) == -(-60 * NANOS // 600)


def test_windows_per_day_follow_utc_alignment():
    assert windows_per_day(5 * 3600) == 5
    assert windows_per_day(7 * 3600) == 4
    assert windows_per_day(8 * 3600) == 3
    assert windows_per_day(86400) == 1
    assert windows_per_day(7 * 86400) == Fraction(1, 7)


def test_cli_agent_json_reproduces_the_post(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tollgate", "cost", "agent", "--json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reference_task"] is True
    assert _close(data["breakdown"]["total_tokens"], 525_000)
    for row in data["published_comparison"]:
        assert abs(Decimal(row["deviation"])) <= TOLERANCE, row
    labels = {c["label"]: c for c in data["costs"]}
    assert _close(labels[OPUS_AS_QUOTED.label]["cost"]["nanos"], 9_180_000_000)
    assert {p["plan"] for p in data["plans"]} == {"standard", "pro"}
    assert any(v["history"] == "full" for v in data["history_variants"])


def test_cli_agent_text_trims_and_explains(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tollgate", "cost", "agent", "--history", "window:2"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "keep the last 2 step(s)" in run.stdout and "Flat-rate plans" in run.stdout
    helped = subprocess.run([sys.executable, "-m", "tollgate", "cost", "agent", "--help"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert helped.returncode == 0
    assert "9,600" in helped.stdout and "1.65M" in helped.stdout
    bad = subprocess.run([sys.executable, "-m", "tollgate", "cost", "agent", "--history", "forget"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "history policy" in bad.stderr


def test_a_free_task_fits_any_plan(flow):
    plan = default_plans()[0]
    fit = plan_fit(plan, price_flow(flow, PricePoint("free", 0, 0)))
    assert fit.tasks_per_day is None and fit.tasks_per_window is None
    assert fit.covers(10_000) and fit.window_share == 0
