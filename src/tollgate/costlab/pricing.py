"""Pricing a simulated task: per-token price points and flat-rate plans, in exact nano-dollars."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Iterable

from tollgate.catalog.reference import ReferenceModel
from tollgate.config.schema import PlanConfig
from tollgate.costlab.agent_sim import TokenFlow
from tollgate.domain.money import request_cost, token_cost, usd_to_nanos

DAY_SECONDS = 86400
DAYS_PER_MONTH = 30  # the post's monthly figures are 30 days of tasks


@dataclass(frozen=True)
class PricePoint:
    """A per-token price pair in nano-dollars per million tokens; output may be unknown."""

    label: str
    input_per_mtok: int
    output_per_mtok: int | None
    model_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> "PricePoint":
        """`IN/OUT` or `LABEL=IN/OUT`, dollars per million tokens: `opus=15/75`."""
        label, _, prices = text.rpartition("=")
        first, sep, second = prices.partition("/")
        if not sep:
            raise ValueError(f"{text!r}: give prices as IN/OUT dollars per million tokens, e.g. 15/75")
        try:
            pin, pout = usd_to_nanos(first.strip().lstrip("$")), usd_to_nanos(second.strip().lstrip("$"))
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from exc
        return cls(label=label.strip() or f"${first.strip()}/${second.strip()}", input_per_mtok=pin, output_per_mtok=pout)

    @classmethod
    def of_model(cls, model: ReferenceModel) -> "PricePoint | None":
        if model.input_per_mtok is None:
            return None
        return cls(model.name, model.input_per_mtok, model.output_per_mtok, model.id)


@dataclass(frozen=True)
class TaskCost:
    """One task priced at one price point. Without an output price it is a lower bound."""

    price: PricePoint
    nanos: int
    lower_bound: bool

    def monthly(self, tasks_per_day: int, days: int = DAYS_PER_MONTH) -> int:
        return self.nanos * tasks_per_day * days


def price_flow(flow: TokenFlow, price: PricePoint) -> TaskCost:
    """The task's cost, rounded up once to a nano-dollar."""
    if price.output_per_mtok is None:
        return TaskCost(price, token_cost(flow.input_tokens, price.input_per_mtok), lower_bound=True)
    cost = request_cost(flow.input_tokens, flow.output_tokens, price.input_per_mtok, price.output_per_mtok)
    return TaskCost(price, cost, lower_bound=False)


def price_on(flow: TokenFlow, prices: Iterable[PricePoint]) -> list[TaskCost]:
    """Costs at every price point, cheapest first; exact costs before lower bounds."""
    costs = [price_flow(flow, p) for p in prices]
    return sorted(costs, key=lambda c: (c.lower_bound, c.nanos))


def blended_per_mtok(flow: TokenFlow, price: PricePoint) -> Decimal:
    """The one per-million price that would give the same total: cost / total tokens."""
    cost = price_flow(flow, price).nanos
    return Decimal(cost) * 1_000_000 / Decimal(flow.total_tokens) if flow.total_tokens else Decimal(0)


@dataclass(frozen=True)
class PlanFit:
    """How much of a task-per-day habit a flat plan's windows afford.

    tollgate meters a plan's window budget at the model's per-token prices, so a task
    costs the same dollars against the window as it would pay per token.
    """

    plan: PlanConfig
    task_nanos: int
    windows_per_day: Fraction

    @property
    def budget_per_day(self) -> int:
        return int(self.plan.budget_per_window * self.windows_per_day)

    @property
    def tasks_per_window(self) -> int | None:
        """Whole tasks that fit one window; None when a task costs nothing (no limit)."""
        return self.plan.budget_per_window // self.task_nanos if self.task_nanos else None

    @property
    def window_share(self) -> Decimal:
        """Fraction of one window's budget a single task spends (may exceed 1)."""
        if self.plan.budget_per_window == 0:
            return Decimal(0) if self.task_nanos == 0 else Decimal("Infinity")
        return Decimal(self.task_nanos) / Decimal(self.plan.budget_per_window)

    @property
    def tasks_per_day(self) -> int | None:
        """Tasks a day, letting a task that runs out park and finish in the next window."""
        return self.budget_per_day // self.task_nanos if self.task_nanos else None

    def covers(self, tasks_per_day: int) -> bool:
        affordable = self.tasks_per_day
        return affordable is None or affordable >= tasks_per_day

    def price_per_task(self, tasks_per_day: int, days: int = DAYS_PER_MONTH) -> int:
        """The plan's monthly price spread over the tasks run (rounded up)."""
        runs = tasks_per_day * days
        return -(-self.plan.price_monthly // runs) if runs else self.plan.price_monthly


def windows_per_day(window_seconds: int) -> Fraction:
    """UTC-aligned windows a day: the last one ends at midnight (5 h -> 5 windows).

    Windows longer than a day count as the fraction of one that a day is (7 d -> 1/7).
    """
    if window_seconds >= DAY_SECONDS:
        return Fraction(DAY_SECONDS, window_seconds)
    return Fraction(-(-DAY_SECONDS // window_seconds))


def plan_fit(plan: PlanConfig, task: TaskCost) -> PlanFit:
    return PlanFit(plan=plan, task_nanos=task.nanos, windows_per_day=windows_per_day(plan.window))
