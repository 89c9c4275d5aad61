"""What routing saves: a labeled workload replayed through a route table, priced against one general model.

The reference workload is the routing guide's: 1,000 requests, 600 simple,
300 general, 70 reasoning, 30 code, each 500 tokens in and 200 out. A file
of real requests can be replayed instead; with `classify`, each request's
route is the classifier's choice (misroutes cost what they cost), not its label.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tollgate.catalog.reference import ReferenceCatalog
from tollgate.config.schema import CATEGORIES
from tollgate.domain.money import request_cost

# The guide's route table, by catalog id.
DEFAULT_ROUTES = {
    "simple": "llama-3.1-8b",
    "general": "deepseek-v3.2",
    "reasoning": "deepseek-r1",
    "code": "qwen3-coder-480b-a35b",
    "agent": "kimi-k2.5",
}
DEFAULT_BASELINE = "deepseek-v3.2"
REFERENCE_MIX = {"simple": 600, "general": 300, "reasoning": 70, "code": 30}
REFERENCE_TOKENS = (500, 200)


@dataclass(frozen=True)
class WorkItem:
    label: str
    input_tokens: int
    output_tokens: int
    request: dict | None = None


@dataclass(frozen=True)
class Price:
    model: str
    input_per_mtok: int
    output_per_mtok: int | None
    # Set when the catalog has no price for the model and another model's rates stand in.
    priced_as: str | None = None

    def cost(self, item: WorkItem) -> tuple[int, bool]:
        """(nano-dollars, lower bound?) — without an output price only the input is counted."""
        if self.output_per_mtok is None:
            return request_cost(item.input_tokens, 0, self.input_per_mtok, 0), True
        return request_cost(item.input_tokens, item.output_tokens, self.input_per_mtok, self.output_per_mtok), False


@dataclass
class RouteLine:
    category: str
    model: str
    requests: int = 0
    cost: int = 0
    lower_bound: bool = False


@dataclass
class RoutingReport:
    lines: dict[str, RouteLine]
    routed_cost: int
    baseline_model: str
    baseline_cost: int
    lower_bound: bool
    classified: bool
    correct: int = 0
    total: int = 0
    misroutes: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def savings(self) -> float:
        return 1 - self.routed_cost / self.baseline_cost if self.baseline_cost else 0.0

    def as_dict(self) -> dict:
        return {
            "routes": [vars(line) for line in self.lines.values()],
            "routed_cost_nanos": self.routed_cost, "baseline_model": self.baseline_model,
            "baseline_cost_nanos": self.baseline_cost, "savings": round(self.savings, 4),
            "lower_bound": self.lower_bound, "classified": self.classified,
            "accuracy": round(self.correct / self.total, 4) if self.classified and self.total else None,
            "misroutes": [{"label": a, "routed": b, "requests": n} for (a, b), n in sorted(self.misroutes.items())],
        }


def reference_workload() -> list[WorkItem]:
    return [WorkItem(category, *REFERENCE_TOKENS) for category, n in REFERENCE_MIX.items() for _ in range(n)]


def load_workload(path: str | Path) -> list[WorkItem]:
    """JSON lines: `{"request": {...} | "text": "...", "label": "code", "input_tokens"?: 500, "output_tokens"?: 200}`."""
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        label = row.get("label")
        if label not in CATEGORIES:
            raise ValueError(f"{path}:{number}: label must be one of {', '.join(CATEGORIES)}, got {label!r}")
        request = row.get("request")
        if request is None and isinstance(row.get("text"), str):
            request = {"messages": [{"role": "user", "content": row["text"]}]}
        items.append(WorkItem(label, int(row.get("input_tokens", REFERENCE_TOKENS[0])),
                              int(row.get("output_tokens", REFERENCE_TOKENS[1])), request))
    return items


def catalog_prices(catalog: ReferenceCatalog, routes: dict[str, str], stand_in: str | None = None) -> dict[str, Price]:
    """Route prices from the catalog. A model without a published price is priced at `stand_in`'s
    rates (the baseline), so that routing is never credited with savings nobody can verify."""
    prices = {}
    for category, name in routes.items():
        model = catalog.get(name)
        if model.input_per_mtok is None or model.output_per_mtok is None:
            if stand_in is None:
                raise ValueError(f"the catalog has no price for {model.id!r} (route {category})")
            other = catalog.get(stand_in)
            prices[category] = Price(model.id, other.input_per_mtok, other.output_per_mtok, priced_as=other.id)
        else:
            prices[category] = Price(model.id, model.input_per_mtok, model.output_per_mtok)
    return prices


def replay(items: list[WorkItem], routes: dict[str, Price], baseline: Price,
           classify: Callable[[dict], str] | None = None) -> RoutingReport:
    """Price every item on its route and on the baseline; with `classify`, routes follow the classifier."""
    lines: dict[str, RouteLine] = {}
    report = RoutingReport(lines, 0, baseline.model, 0, False, classify is not None)
    for item in items:
        category = item.label
        if classify is not None and item.request is not None:
            category = classify(item.request)
            report.total += 1
            if category == item.label:
                report.correct += 1
            else:
                report.misroutes[(item.label, category)] = report.misroutes.get((item.label, category), 0) + 1
        price = routes.get(category) or routes["general"]
        cost, bound = price.cost(item)
        line = lines.setdefault(category, RouteLine(category, price.model))
        line.requests += 1
        line.cost += cost
        line.lower_bound |= bound
        report.routed_cost += cost
        base, base_bound = baseline.cost(item)
        report.baseline_cost += base
        report.lower_bound |= bound or base_bound
    return report
