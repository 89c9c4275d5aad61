"""`tollgate cost agent --price cached`: the agent-cost post's task priced with and without cache prices.

Which tokens of each call are a cache hit follows from the history policy (costlab/cache_pricing.py):
worked out here by hand on small tasks, then the 525K-token reference task side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

from tollgate.catalog import load_reference_catalog
from tollgate.costlab.agent_sim import AgentTask, HistoryPolicy, simulate
from tollgate.costlab.cache_pricing import cache_costs, cached_calls, price_calls
from tollgate.costlab.reference_task import REFERENCE_TASK
from tollgate.domain.pricing import Price, Rates, TokenUsage, charge

USD = 1_000_000_000


def test_a_growing_history_hits_the_whole_previous_prompt():
    # 3 steps, system 100, tool output 30 a step, output 10 a step, full history.
    flow = simulate(AgentTask(3, 100, 90, 30, history=HistoryPolicy()))
    assert cached_calls(flow) == [
        TokenUsage(130, 10, 0, 130),  # the first call writes its whole prompt
        TokenUsage(100 + 40 + 30, 10, 130, 40),  # the previous prompt is a hit; its answer and the new output are not
        TokenUsage(100 + 80 + 30, 10, 170, 40),
    ]


def test_a_trimmed_history_hits_only_the_system_prompt():
    flow = simulate(AgentTask(3, 100, 90, 30, history=HistoryPolicy("window", window_steps=1)))
    calls = cached_calls(flow)
    assert calls[1] == TokenUsage(170, 10, 130, 40)  # nothing dropped yet: it only grew
    assert calls[2].cached == 100 and calls[2].cache_write == calls[2].prompt - 100  # step 1 dropped


def test_a_summary_call_reads_the_previous_prompt():
    flow = simulate(AgentTask(4, 100, 400, 40, history=HistoryPolicy("summarise", summarise_at=150, summary_tokens=20)))
    calls = cached_calls(flow)
    summarised = next(i for i, s in enumerate(flow.steps) if s.summary_input)
    summary, after = calls[summarised], calls[summarised + 1]
    assert summary.cached == flow.steps[summarised - 1].prompt_tokens
    assert after.cached == 100  # the history changed right after the system prompt
    assert len(calls) == flow.model_calls


def test_the_reference_task_side_by_side():
    flow = simulate(REFERENCE_TASK)
    catalog = load_reference_catalog()
    costs = {c.model.id: c for c in cache_costs(flow, catalog)}
    assert set(costs) == {"deepseek-v3.2", "deepseek-r1", "claude-opus-4.6"}  # those publishing cache prices
    calls = cached_calls(flow)
    assert sum(c.prompt for c in calls) == flow.input_tokens and sum(c.completion for c in calls) == flow.output_tokens
    deepseek = costs["deepseek-v3.2"]
    # Without cache prices: each call at $0.27/$1.10, rounded up on its own.
    assert deepseek.plain == sum(charge(Price.flat(270_000_000, 1_100_000_000), c) for c in calls)
    assert abs(deepseek.plain - 157_000_000) < 1_000_000  # the post's $0.16
    assert deepseek.cached < deepseek.plain
    # Every hit saved exactly 200 nano-dollars ($0.27 - $0.07 per million; whole nanos per token, no rounding),
    # and writes cost nothing extra at DeepSeek.
    assert deepseek.saved == sum(c.cached for c in calls) * 200 == deepseek.cached_tokens * 200
    full = {c.model.id: c for c in cache_costs(simulate(replace(REFERENCE_TASK, history=HistoryPolicy())), catalog)}
    assert full["claude-opus-4.6"].cached < costs["claude-opus-4.6"].cached  # cached, full history beats trimming


def test_a_write_premium_is_billed_on_every_call_that_writes():
    price = Price(Rates(USD, 2 * USD, USD // 10, 2 * USD))
    calls = [TokenUsage(1000, 0, 0, 1000), TokenUsage(1000, 0, 1000, 0)]
    assert price_calls(price, calls) == (2_000_000, 2_000_000 + 100_000)


def test_cli_price_cached_shows_both_columns(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tollgate", "cost", "agent", "--price", "cached"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "without cache pricing" in run.stdout and "with cache pricing" in run.stdout
    data = json.loads(subprocess.run([sys.executable, "-m", "tollgate", "cost", "agent", "--price", "cached", "--json"],
                                     capture_output=True, text=True, cwd=tmp_path, timeout=60).stdout)
    rows = data["cache_pricing"]
    assert {(r["history"], r["model"]) for r in rows} >= {("cap:7800", "deepseek-v3.2"), ("full", "claude-opus-4.6")}
    for row in rows:
        assert row["with_cache_pricing"]["nanos"] + row["saved"]["nanos"] == row["without_cache_pricing"]["nanos"]
    plain = json.loads(subprocess.run([sys.executable, "-m", "tollgate", "cost", "agent", "--json"],
                                      capture_output=True, text=True, cwd=tmp_path, timeout=60).stdout)
    assert "cache_pricing" not in plain
