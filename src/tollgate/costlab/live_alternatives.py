"""What the same traffic would cost elsewhere: other models' prices, and flat plans' windows.

Exact integer nano-dollars, each request rounded up like a charge (`tollgate.domain.money`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from tollgate.catalog.reference import ReferenceCatalog
from tollgate.config.schema import ModelConfig
from tollgate.costlab.pricing import windows_per_day
from tollgate.domain.accounts import Plan
from tollgate.domain.money import TOKENS_PER_MTOK, request_cost, token_cost
from tollgate.domain.usage import UsageRecord
from tollgate.domain.windows import window_start


@dataclass(frozen=True)
class Price:
    """A model's per-token prices (nano-dollars per million tokens); output may be unknown.

    `cached_input_per_mtok` is what a cache hit costs where the provider prices hits apart (None:
    a hit costs the input price). Resent context is what a prefix cache can serve, so the report
    prices it both ways: at the input price, and as if every resent token were a hit.
    """

    model: str
    name: str
    source: str  # "served" (this gateway's config) or "catalog" (the reference catalog)
    input_per_mtok: int
    output_per_mtok: int | None
    cached_input_per_mtok: int | None = None

    @property
    def hit_per_mtok(self) -> int:
        """What one cache hit costs: the cache-hit price, or the input price for a model without one."""
        return self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok

    def cost(self, input_tokens: int, output_tokens: int) -> int:
        """One request's cost, rounded up once like a charge; input only when output is unpriced."""
        if self.output_per_mtok is None:
            return token_cost(input_tokens, self.input_per_mtok)
        return request_cost(input_tokens, output_tokens, self.input_per_mtok, self.output_per_mtok)


def served_prices(models: Iterable[ModelConfig]) -> list[Price]:
    """The gateway's own chat models (embedding models serve no chat traffic)."""
    return [Price(m.id, m.id, "served", m.input_per_mtok, m.output_per_mtok, m.price.base.cached_input_per_mtok)
            for m in models if not m.is_embedding]


def catalog_prices(catalog: ReferenceCatalog) -> tuple[list[Price], list[str]]:
    """(priced chat models of the reference catalog, ids of chat models with no input price)."""
    priced, unpriced = [], []
    for m in catalog:
        if not m.has("chat"):
            continue
        if m.input_per_mtok is None:
            unpriced.append(m.id)
        else:
            priced.append(Price(m.id, m.name, "catalog", m.input_per_mtok, m.output_per_mtok, m.cached_input_per_mtok))
    return priced, unpriced


@dataclass(frozen=True)
class Repriced:
    """The same generation traffic charged at another model's prices, request by request."""

    price: Price
    cost: int
    resent_cost: int
    resent_cached_cost: int | None = None  # the resent part as cache hits; None: the model has no cache-hit price

    @property
    def lower_bound(self) -> bool:
        return self.price.output_per_mtok is None


@dataclass(frozen=True)
class PlanUse:
    """The spend set against a flat plan's windows (a plan meters at the served models' prices)."""

    plan: Plan
    spend: int
    peak_window_start: int | None  # the plan window in which the traffic spent the most
    peak_spend: int

    @property
    def windows_per_day(self) -> Fraction:
        return windows_per_day(self.plan.window)

    @property
    def windows_needed(self) -> int | None:
        """Full windows of budget the spend takes; None when the plan's budget is zero."""
        return _ceil_div(self.spend, self.plan.budget_per_window)

    @property
    def days_of_windows(self) -> Fraction | None:
        needed = self.windows_needed
        return None if needed is None else needed / self.windows_per_day

    @property
    def subscriptions_needed(self) -> int | None:
        """Subscriptions side by side so the busiest window's traffic never waits for a reset."""
        return _ceil_div(self.peak_spend, self.plan.budget_per_window)


def reprice(inputs: Sequence[int], outputs: Sequence[int], resent: Sequence[int],
            prices: Iterable[Price]) -> list[Repriced]:
    """Requests given as parallel token lists, charged at each price; exact figures cheapest first. The
    resent part is charged on its own, at the input price and, for a model with one, the cache-hit price."""
    repriced = []
    for p in prices:
        out_price = 0 if p.output_per_mtok is None else p.output_per_mtok
        hits = None if p.cached_input_per_mtok is None else _charged(resent, p.cached_input_per_mtok, (), 0)
        repriced.append(Repriced(p, _charged(inputs, p.input_per_mtok, outputs, out_price),
                                 _charged(resent, p.input_per_mtok, (), 0), hits))
    repriced.sort(key=lambda x: (x.lower_bound, x.cost, x.price.source != "served", x.price.model))
    return repriced


def _charged(first: Sequence[int], first_price: int, second: Sequence[int], second_price: int) -> int:
    """The sum over requests of request_cost(first_i, second_i, ...), each rounded up to a nano-dollar.

    A price that is a multiple of $0.001 per million tokens charges whole nano-dollars per
    token, so nothing rounds and the sum can be taken in one go.
    """
    if first_price % TOKENS_PER_MTOK == 0 and second_price % TOKENS_PER_MTOK == 0:
        return (sum(first) * first_price + sum(second) * second_price) // TOKENS_PER_MTOK
    if not second:
        return sum(token_cost(n, first_price) for n in first)
    return sum(request_cost(a, b, first_price, second_price) for a, b in zip(first, second, strict=True))


def plan_use(plan: Plan, records: Iterable[UsageRecord]) -> PlanUse:
    """The records' charges set against the plan's UTC-aligned windows."""
    windows: dict[int, int] = defaultdict(int)
    spend = 0
    for r in records:
        if r.cost:
            spend += r.cost
            windows[window_start(r.created_at, plan.window)] += r.cost
    peak = max(windows, key=lambda start: (windows[start], -start), default=None)
    return PlanUse(plan, spend, peak, windows[peak] if peak is not None else 0)


def _ceil_div(amount: int, unit: int) -> int | None:
    if amount <= 0:
        return 0
    return -(-amount // unit) if unit > 0 else None
