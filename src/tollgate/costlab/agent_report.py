"""`cost agent`'s report: the simulated flow, its prices, plan fits and history variants."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Sequence

from tollgate.catalog.reference import ReferenceModel, load_reference_catalog
from tollgate.config.defaults import default_plans
from tollgate.costlab.agent_sim import AgentTask, HistoryPolicy, TokenFlow, simulate
from tollgate.costlab.cache_pricing import CacheCost, cache_costs
from tollgate.costlab.pricing import PlanFit, PricePoint, TaskCost, plan_fit, price_flow, price_on
from tollgate.costlab.reference_task import (
    DEEPSEEK_AS_QUOTED,
    OPUS_AS_QUOTED,
    REFERENCE_TASK,
    Check,
    discrepancies,
    reproduce,
)
from tollgate.costlab.table import percent, render_table, signed_percent
from tollgate.domain.money import format_usd

CACHED = "cached"  # `--price cached`: add the task priced with the catalog's cache prices
DEFAULT_VARIANTS = ("full", f"cap:{REFERENCE_TASK.history.cap_tokens}", "window:3", "window:1", "summarise:20000:2000")


@dataclass(frozen=True)
class Variant:
    policy: HistoryPolicy
    flow: TokenFlow
    costs: tuple[TaskCost, ...]  # at the post's two price points


@dataclass(frozen=True)
class AgentReport:
    flow: TokenFlow
    is_reference: bool
    checks: tuple[Check, ...]
    costs: tuple[TaskCost, ...]
    unpriced: tuple[ReferenceModel, ...]
    plans: tuple[tuple[PlanFit, str], ...]  # (fit, price point label)
    variants: tuple[Variant, ...]
    notes: tuple[str, ...]
    tasks_per_day: tuple[int, ...]
    # With `--price cached`: (history policy, its flow's cost on each cache-priced model), the task's own
    # policy first, then full history (what caching changes most).
    cache: tuple[tuple[HistoryPolicy, tuple[CacheCost, ...]], ...] = ()

    def to_json(self) -> dict:
        flow, task = self.flow, self.flow.task
        return {
            **({"cache_pricing": [
                {"history": policy.spec(), "model": c.model.id, "without_cache_pricing": _money(c.plain),
                 "with_cache_pricing": _money(c.cached), "saved": _money(c.saved), "cached_tokens": c.cached_tokens,
                 "input_tokens": c.input_tokens} for policy, costs in self.cache for c in costs]} if self.cache else {}),
            "task": {
                "steps": task.steps, "system_prompt_tokens": task.system_prompt_tokens,
                "tool_output_tokens": task.tool_output_tokens, "agent_output_tokens": task.agent_output_tokens,
                "task_tokens": task.task_tokens, "history": task.history.spec(),
            },
            "breakdown": _breakdown_json(flow),
            "reference_task": self.is_reference,
            "published_comparison": [
                {"figure": c.label, "published": _jsonable(c.published, c.unit),
                 "reproduced": _jsonable(c.reproduced, c.unit), "deviation": f"{c.deviation:.4f}"}
                for c in self.checks
            ],
            "costs": [
                {"label": c.price.label, "model": c.price.model_id, "cost": _money(c.nanos),
                 "lower_bound": c.lower_bound,
                 "monthly": {str(n): _money(c.monthly(n)) for n in self.tasks_per_day}}
                for c in self.costs
            ],
            "unpriced_models": [m.id for m in self.unpriced],
            "plans": [
                {"plan": f.plan.slug, "price": _money(f.plan.price_monthly), "label": label,
                 "budget_per_window": _money(f.plan.budget_per_window), "windows_per_day": str(f.windows_per_day),
                 "task_share_of_window": f"{f.window_share:.4f}", "tasks_per_window": f.tasks_per_window,
                 "tasks_per_day": f.tasks_per_day, "covers": {str(n): f.covers(n) for n in self.tasks_per_day}}
                for f, label in self.plans
            ],
            "history_variants": [
                {"history": v.policy.spec(), **_breakdown_json(v.flow),
                 "costs": {c.price.label: _money(c.nanos) for c in v.costs}}
                for v in self.variants
            ],
            "steps": [
                {"step": s.step, "system": s.system, "history": s.history, "fresh": s.fresh, "output": s.output,
                 "summary_input": s.summary_input, "summary_output": s.summary_output}
                for s in flow.steps
            ],
            "notes": list(self.notes),
        }


def agent_report(
    steps: int,
    system_prompt: int,
    tool_output: int,
    agent_output: int,
    task_tokens: int = 0,
    history: str = "cap:7800",
    compare: Sequence[str] | None = None,
    extra_prices: Sequence[str] = (),
    tasks_per_day: Sequence[int] = (5, 20),
) -> AgentReport:
    """Everything `cost agent` shows, computed; ValueError on bad parameters. An extra price of `cached`
    adds the task priced with and without the catalog's cache prices, side by side."""
    task = AgentTask(steps, system_prompt, tool_output, agent_output, task_tokens, HistoryPolicy.parse(history))
    flow = simulate(task)
    catalog = load_reference_catalog()
    with_cache = CACHED in extra_prices
    prices = [OPUS_AS_QUOTED, DEEPSEEK_AS_QUOTED, *(PricePoint.parse(p) for p in extra_prices if p != CACHED)]
    quoted = {(p.model_id, p.input_per_mtok, p.output_per_mtok) for p in prices}
    unpriced = []
    for model in catalog:
        point = PricePoint.of_model(model)
        if point is None:
            unpriced.append(model)
        elif (point.model_id, point.input_per_mtok, point.output_per_mtok) not in quoted:
            prices.append(point)
    costs = price_on(flow, prices)
    exact = [c for c in costs if not c.lower_bound]
    plans = [(plan_fit(plan, cost), cost.price.label) for plan in default_plans() for cost in exact]
    policies = [HistoryPolicy.parse(p) for p in (compare or DEFAULT_VARIANTS)]
    if not compare and task.history not in policies:
        policies.append(task.history)
    variants = []
    for policy in policies:
        vflow = simulate(replace(task, history=policy))
        variants.append(Variant(policy, vflow, (price_flow(vflow, OPUS_AS_QUOTED), price_flow(vflow, DEEPSEEK_AS_QUOTED))))
    is_reference = task == REFERENCE_TASK
    ref_flow = flow if is_reference else simulate(REFERENCE_TASK)
    notes = discrepancies(ref_flow, _point(catalog, "gpt-5.4"), _point(catalog, "claude-opus-4.6"))
    cache = []
    if with_cache:
        for policy in dict.fromkeys((task.history, HistoryPolicy())):
            pflow = flow if policy == task.history else simulate(replace(task, history=policy))
            cache.append((policy, tuple(cache_costs(pflow, catalog))))
    return AgentReport(
        flow=flow,
        is_reference=is_reference,
        checks=tuple(reproduce(flow)) if is_reference else (),
        costs=tuple(costs),
        unpriced=tuple(unpriced),
        plans=tuple(plans),
        variants=tuple(variants),
        notes=tuple(notes),
        tasks_per_day=tuple(tasks_per_day),
        cache=tuple(cache),
    )


def render_agent_report(report: AgentReport, steps_table: bool = False) -> str:
    flow, task = report.flow, report.flow.task
    out = [
        f"Agent task: {task.steps} steps; system prompt {task.system_prompt_tokens:,}; tool output "
        f"{task.tool_output_tokens:,}; agent output {task.agent_output_tokens:,}; history: {task.history.describe()}",
        "",
        "Token flow" + (" (vs the agent-cost post)" if report.is_reference else ""),
    ]
    published = {c.label: c for c in report.checks}
    rows = []
    for label, value in _breakdown_rows(flow):
        check = published.get(label)
        rows.append([label, f"{value:,}", f"~{check.published:,}" if check else "",
                     signed_percent(check.deviation) if check else ""])
    share = published.get("overhead share")
    rows.append(["overhead (all but agent output)", percent(flow.overhead_share),
                 f"~{percent(share.published, 0)}" if share else "", ""])
    out.append(render_table(["", "tokens", "published" if report.is_reference else "", ""], rows, right=(1, 2, 3)))
    if steps_table:
        out += ["", "Step by step"]
        out.append(render_table(
            ["step", "system", "history", "fresh", "output", "prompt", "summary call"],
            [[s.step, f"{s.system:,}", f"{s.history:,}", f"{s.fresh:,}", f"{s.output:,}", f"{s.prompt_tokens:,}",
              f"{s.summary_input:,}+{s.summary_output:,}" if s.summary_input else ""] for s in flow.steps],
            right=range(7)))
    out += ["", f"Cost per task ({flow.input_tokens:,} in, {flow.output_tokens:,} out)"]
    rows = []
    for cost in report.costs:
        mark = ">=" if cost.lower_bound else ""
        rows.append([cost.price.label, mark + _usd(cost.nanos)] + [mark + _usd(cost.monthly(n)) for n in report.tasks_per_day])
    out.append(render_table(["price", "per task"] + [f"{n}/day, 30 days" for n in report.tasks_per_day],
                            rows, right=range(1, 2 + len(report.tasks_per_day))))
    if any(c.lower_bound for c in report.costs):
        out.append("  >= input price only (no output price in the catalog): a lower bound.")
    if report.unpriced:
        out.append("  Not priced (no price in the catalog): " + ", ".join(m.name for m in report.unpriced) + ".")
    out += ["", "Flat-rate plans (window budget metered at the model's per-token prices)"]
    rows = []
    for fit, label in report.plans:
        rows.append([f"{fit.plan.slug} ${format_usd(fit.plan.price_monthly)}/mo", label,
                     percent(fit.window_share, 0), _or_unlimited(fit.tasks_per_window),
                     _or_unlimited(fit.tasks_per_day)]
                    + ["yes" if fit.covers(n) else "no" for n in report.tasks_per_day])
    out.append(render_table(["plan", "task priced as", "task/window", "tasks/window", "tasks/day"]
                            + [f"{n}/day?" for n in report.tasks_per_day], rows, right=(2, 3, 4)))
    if report.plans:
        fit = report.plans[0][0]
        out.append(f"  {fit.windows_per_day} windows a day (UTC-aligned, the last ends at midnight); a task that "
                   "spends a window's budget parks and resumes in the next.")
        firsts = {f.plan.slug: f for f, _ in reversed(report.plans)}
        for slug, fit in reversed(firsts.items()):
            per_task = ", ".join(f"{_usd(fit.price_per_task(n))} a task at {n}/day" for n in report.tasks_per_day)
            out.append(f"  {slug}: ${format_usd(fit.plan.price_monthly)}/mo is {per_task}, "
                       "for as many tasks as its windows afford.")
    out += ["", "History policy: what trimming or summarising changes"]
    rows = [[v.policy.describe(), f"{v.flow.context_accumulation:,}", f"{v.flow.total_tokens:,}",
             f"{v.flow.peak_prompt:,}"] + [_usd(c.nanos) for c in v.costs] for v in report.variants]
    out.append(render_table(["history", "re-sent", "total", "peak prompt", "$15/$75", "$0.27/$1.10"],
                            rows, right=range(1, 6)))
    if report.cache:
        out += _cache_section(report)
    out += ["", "About the post's figures"]
    out += [f"  - {line}" for line in report.notes]
    return "\n".join(out)


def _cache_section(report: AgentReport) -> list[str]:
    """`--price cached`: the task with and without cache pricing, side by side (costlab/cache_pricing.py)."""
    out = ["", "Cache pricing: each call's resent prefix read from the provider's cache, the rest written to it"]
    rows = []
    for policy, costs in report.cache:
        for c in costs:
            rows.append([c.model.name, policy.describe(), percent(Decimal(c.cached_tokens) / c.input_tokens)
                         if c.input_tokens else "-", _usd(c.plain), _usd(c.cached), _usd(c.saved),
                         percent(Decimal(c.saved) / c.plain, 0) if c.plain else "-"])
    out.append(render_table(["model", "history", "input cached", "without cache pricing", "with cache pricing",
                             "saved", "saved %"], rows, right=range(2, 7)))
    out.append("  A trimmed or summarised history changes the prompt right after the system prompt: only that "
               "prefix hits.")
    return out


def _point(catalog, model_id: str) -> PricePoint | None:
    try:
        return PricePoint.of_model(catalog.get(model_id))
    except KeyError:
        return None


def _breakdown_rows(flow: TokenFlow) -> list[tuple[str, int]]:
    rows = [
        ("context accumulation", flow.context_accumulation),
        (f"system prompt (x{flow.task.steps})", flow.system_prompt_resent),
        ("tool outputs", flow.tool_outputs),
        ("agent output", flow.agent_output),
    ]
    if flow.summarisation:
        rows.append(("summarisation calls", flow.summarisation))
    rows.append(("total", flow.total_tokens))
    return rows


def _breakdown_json(flow: TokenFlow) -> dict:
    return {
        "context_accumulation": flow.context_accumulation, "system_prompt_resent": flow.system_prompt_resent,
        "tool_outputs": flow.tool_outputs, "agent_output": flow.agent_output,
        "summarisation": flow.summarisation, "input_tokens": flow.input_tokens,
        "output_tokens": flow.output_tokens, "total_tokens": flow.total_tokens,
        "overhead_share": f"{flow.overhead_share:.4f}", "model_calls": flow.model_calls,
        "peak_prompt_tokens": flow.peak_prompt,
    }


def _or_unlimited(count: int | None) -> str:
    return "unlimited" if count is None else str(count)


def _money(nanos: int) -> dict:
    return {"usd": format_usd(nanos), "nanos": nanos}


def _jsonable(value, unit: str):
    if unit == "nanos":
        return _money(int(value))
    if unit == "share":
        return f"{value:.4f}"
    return value


def _usd(nanos: int) -> str:
    """Cents for people (half-up, thousands grouped); below a cent, every digit stays visible."""
    cent = 10_000_000
    text = format_usd(nanos if nanos < cent else (nanos + cent // 2) // cent * cent)
    whole, _, frac = text.partition(".")
    return f"${int(whole):,}.{frac}"
