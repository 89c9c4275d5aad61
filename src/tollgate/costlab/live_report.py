"""The live overhead report as JSON (CLI and management API share one shape) and as text for people."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tollgate.costlab.live import (
    LiveReport,
    PlanUse,
    Repriced,
    Scope,
    Session,
    Step,
    Tally,
    cheapest,
)
from tollgate.costlab.table import percent, render_table
from tollgate.domain.durations import format_duration
from tollgate.domain.money import format_usd
from tollgate.domain.timestamps import iso

RESENT_RULE = ("resent = the longest prefix of the conversation's current branch (0, each earlier prompt, "
               "each answered prompt + its output) that fits in the prompt; new = the rest")


def live_json(report: LiveReport, usd: Callable[[int], Any] = format_usd, number: Callable[[str], Any] = str,
              camel: bool = False, steps: bool = False) -> dict:
    """The report as JSON data. Money is `usd(nanos)` next to an exact `*_nanos` integer; ratios
    are `number(text)` with 4 decimals. `camel` writes the management API's camelCase keys."""
    j = _Json(usd, number, steps)
    data = {
        "account_id": report.account_id, "since": iso(report.since), "until": iso(report.until),
        "resent_rule": RESENT_RULE,
        "total": {**j.scope(report.total), "keys": len(report.keys), "sessions": len(report.total.sessions)},
        "keys": [{"key_id": key_id, "name": report.key_names.get(key_id), **j.scope(scope),
                  "sessions": [j.session(s) for s in scope.sessions]} for key_id, scope in report.keys],
        "unpriced_models": list(report.unpriced_models),
        "unpriced_catalog_models": list(report.unpriced_catalog),
    }
    return _camel(data) if camel else data


class _Json:
    def __init__(self, usd: Callable[[int], Any], number: Callable[[str], Any], steps: bool) -> None:
        self.usd, self.number, self.steps = usd, number, steps

    def money(self, name: str, nanos: int | None) -> dict:
        return {name: self.usd(nanos) if nanos is not None else None, f"{name}_nanos": nanos}

    def ratio(self, value: Decimal | Fraction | None) -> Any:
        if value is None:
            return None
        if isinstance(value, Fraction):
            value = Decimal(value.numerator) / Decimal(value.denominator)
        return self.number(f"{value:.4f}")

    def tally(self, t: Tally) -> dict:
        return {
            "requests": t.requests, "failed": t.failed, "input_tokens": t.input_tokens,
            "resent_tokens": t.resent_tokens, "new_tokens": t.new_tokens, "output_tokens": t.output_tokens,
            "cached_tokens": t.cached_tokens, "resent_share": self.ratio(t.resent_share),
            **self.money("cost", t.cost), **self.money("resent_cost", t.resent_cost),
            "resent_cost_share": self.ratio(t.resent_cost_share), "unpriced_resent_tokens": t.unpriced_resent_tokens,
            **self.money("resent_cached_cost", t.resent_cached_cost),
            "cache_priced_resent_tokens": t.cache_priced_resent_tokens, "cache_write_tokens": t.cache_write_tokens,
            **self.money("cache_saved", t.cache_saved),
        }

    def scope(self, scope: Scope) -> dict:
        generation = scope.generation
        return {
            **self.tally(scope.tally),
            "no_session": self.tally(scope.no_session),
            "comparison": {"requests": generation.requests, **self.money("actual_cost", generation.cost),
                           "models": [self.repriced(r, generation.cost) for r in scope.repriced]},
            "plans": [self.plan(p) for p in scope.plans],
        }

    def session(self, s: Session) -> dict:
        data = {"session": s.session, "key_id": s.key_id, "first_at": iso(s.first_at), "last_at": iso(s.last_at),
                "models": list(s.models), "branches": s.branches, **self.tally(s.tally)}
        if self.steps:
            data["steps"] = [self.step(step) for step in s.steps]
        return data

    def step(self, s: Step) -> dict:
        r = s.record
        return {"request_id": r.request_id, "at": iso(r.created_at), "model": r.model, "status": r.status,
                "input_tokens": r.input_tokens, "resent_tokens": s.resent_tokens, "new_tokens": s.new_tokens,
                "output_tokens": r.output_tokens, "branched": s.branched,
                **self.money("cost", r.cost), **self.money("resent_cost", s.resent_cost),
                **self.money("resent_cached_cost", s.resent_cached_cost),
                "cached_tokens": r.cached_prefix_tokens, "cache_write_tokens": r.cache_write_tokens,
                **self.money("cache_saved", r.cache_saved)}

    def repriced(self, r: Repriced, actual: int) -> dict:
        p = r.price
        return {"model": p.model, "name": p.name, "source": p.source,
                **self.money("input_per_mtok", p.input_per_mtok), **self.money("output_per_mtok", p.output_per_mtok),
                **self.money("cached_input_per_mtok", p.cached_input_per_mtok),
                **self.money("cost", r.cost), **self.money("resent_cost", r.resent_cost),
                **self.money("resent_cached_cost", r.resent_cached_cost),
                "lower_bound": r.lower_bound, "vs_actual": self.ratio(Decimal(r.cost) / actual) if actual else None}

    def plan(self, u: PlanUse) -> dict:
        plan = u.plan
        subs = u.subscriptions_needed
        return {"plan": plan.slug, "name": plan.name, **self.money("price_monthly", plan.price_monthly),
                "window": format_duration(plan.window), **self.money("budget_per_window", plan.budget_per_window),
                **self.money("spend", u.spend), "windows_needed": u.windows_needed,
                "windows_per_day": self.ratio(u.windows_per_day), "days_of_windows": self.ratio(u.days_of_windows),
                "busiest_window_start": iso(u.peak_window_start), **self.money("busiest_window_spend", u.peak_spend),
                "subscriptions_needed": subs,
                **self.money("subscriptions_price_monthly", None if subs is None else subs * plan.price_monthly)}


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_key(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# -- text ------------------------------------------------------------------------------

def render_live_text(report: LiveReport, top_models: int = 12) -> str:
    total = report.total
    t = total.tally
    period = f"{iso(report.since) or 'the start'} to {iso(report.until) or 'now'}"
    summary = (f"  {t.requests:,} requests in {len(total.sessions):,} conversations over {len(report.keys)} key(s); "
               f"{t.input_tokens:,} input tokens, of which {t.resent_tokens:,} ({percent(t.resent_share)}) resent "
               f"context; resent context cost {_usd(t.resent_cost)} of {_usd(t.cost)} "
               f"({percent(t.resent_cost_share)}).")
    out = [f"Live overhead for account {report.account_id}, {period}", summary]
    if t.cache_priced_resent_tokens:
        out.append(f"  With every resent token a cache hit ({t.cache_priced_resent_tokens:,} of them on models with a "
                   f"cache-hit price), resent context would cost {_usd(t.resent_cached_cost)} "
                   f"({_usd(t.resent_cache_saving)} less).")
    if t.cached_tokens or t.cache_write_tokens or t.cache_saved:
        out.append(f"  Caching as it was: {t.cached_tokens:,} prompt tokens were cache hits and "
                   f"{t.cache_write_tokens:,} cache writes; cache pricing saved {_usd(t.cache_saved)}.")
    out.append("")
    if not t.requests:
        out.append("  No usage in this period.")
        return "\n".join(out)
    out.append("Per key")
    rows = [[key_id, report.key_names.get(key_id) or "", *_tally_cells(scope.tally), len(scope.sessions)]
            for key_id, scope in report.keys]
    out.append(render_table(["key", "name", *_TALLY_HEAD, "sessions"], rows, right=range(2, 3 + len(_TALLY_HEAD))))
    out += ["", "Per conversation (session = hash of the opening; branches = steps whose prompt went back)"]
    rows = [[s.key_id, s.session, *_tally_cells(s.tally), s.branches] for s in total.sessions]
    out.append(render_table(["key", "session", *_TALLY_HEAD, "branches"], rows, right=range(2, 3 + len(_TALLY_HEAD))))
    if total.no_session.requests:
        n = total.no_session
        out.append(f"  Outside conversations (completions, embeddings): {n.requests:,} request(s), "
                   f"{n.input_tokens:,} input tokens (all new), {_usd(n.cost)}.")
    generation = total.generation
    out += ["", (f"The same {generation.requests:,} chat/completion requests on other models "
                 f"(actual {_usd(generation.cost)}; each request re-priced and rounded like a charge)")]
    shown = [r for r in total.repriced if r.price.source == "served"]
    shown += [r for r in total.repriced if r.price.source != "served"][:top_models]
    rows = []
    for r in sorted(shown, key=lambda r: (r.lower_bound, r.cost)):
        mark = ">=" if r.lower_bound else ""
        ratio = f"{Decimal(r.cost) / generation.cost:.2f}x" if generation.cost else ""
        rows.append([r.price.name, r.price.source, _per_mtok(r.price.input_per_mtok, r.price.output_per_mtok),
                     mark + _usd(r.cost), mark + ratio, _usd(r.resent_cost),
                     "" if r.resent_cached_cost is None else _usd(r.resent_cached_cost)])
    out.append(render_table(["model", "source", "$/M in/out", "cost", "vs actual", "resent part", "as cache hits"],
                            rows, right=(3, 4, 5, 6)))
    hidden = len(total.repriced) - len(shown)
    if hidden > 0:
        out.append(f"  {hidden} more catalog model(s) in --json.")
    if any(r.lower_bound for r in shown):
        out.append("  >= input price only (the catalog has no output price): a lower bound.")
    best = cheapest(total)
    if best is not None and generation.cost:
        out.append(f"  Cheapest: {best.price.name} at {_usd(best.cost)}.")
    out += ["", f"On flat plans (spend {_usd(t.cost)} metered at the served models' prices)"]
    rows = [[f"{u.plan.slug} ${format_usd(u.plan.price_monthly)}/mo",
             f"${format_usd(u.plan.budget_per_window)}/{format_duration(u.plan.window)}",
             _count(u.windows_needed), _days(u), _usd(u.peak_spend), _count(u.subscriptions_needed)]
            for u in total.plans]
    out.append(render_table(["plan", "budget", "windows needed", "days of windows", "busiest window",
                             "plans for it"], rows, right=range(2, 6)))
    out.append("  'plans for it': subscriptions side by side so the busiest window's traffic never parks.")
    notes = []
    if report.unpriced_models:
        notes.append("no served price for " + ", ".join(report.unpriced_models)
                     + f": {t.unpriced_resent_tokens:,} resent tokens left out of the resent cost")
    notes.append("'as cache hits' / 'resent if hit': every resent token priced at the model's cache-hit price "
                 "(a lower bound on cost: a provider's cache may have dropped the prefix, and the previous answer, resent "
                 "for the first time, is written to the cache rather than read from it)")
    notes.append("token counts are the served models' own; another model's tokenizer would count the same "
                 "text somewhat differently")
    out += ["", "Notes", *(f"  - {n}" for n in notes)]
    return "\n".join(out)


_TALLY_HEAD = ["requests", "input", "resent", "new", "resent %", "output", "cost", "resent cost", "resent if hit",
              "cache hits", "cache saved"]


def _tally_cells(t: Tally) -> list[str]:
    return [f"{t.requests:,}", f"{t.input_tokens:,}", f"{t.resent_tokens:,}", f"{t.new_tokens:,}",
            percent(t.resent_share), f"{t.output_tokens:,}", _usd(t.cost), _usd(t.resent_cost),
            _usd(t.resent_cached_cost), f"{t.cached_tokens:,}", _usd(t.cache_saved)]


def _usd(nanos: int) -> str:
    return f"${format_usd(nanos)}"


def _per_mtok(pin: int, pout: int | None) -> str:
    return f"${format_usd(pin)}/" + (f"${format_usd(pout)}" if pout is not None else "?")


def _count(value: int | None) -> str:
    return "never" if value is None else f"{value:,}"


def _days(u: PlanUse) -> str:
    days = u.days_of_windows
    return "never" if days is None else f"{Decimal(days.numerator) / Decimal(days.denominator):.1f}"
