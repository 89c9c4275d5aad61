"""Spend reports: by budget window, UTC day, ISO week and month.

Two ways in, one shape out. `spend_report` groups usage records already in memory;
`summarize` rolls up the sums a database computed per (UTC day, window start) — the
finest buckets every grouping is made of — so that a report over a long history
never brings its records into Python (`Store.usage_summary`). Both label a record
by the whole second it was admitted in (`created_at` floored, as budget windows are),
so they agree to the nano-dollar; tests hold them to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tollgate.domain.money import format_usd
from tollgate.domain.timestamps import iso
from tollgate.domain.usage import UsageRecord
from tollgate.domain.windows import DAY, window_end, window_start

GROUPINGS = ("by_window", "by_day", "by_week", "by_month")


@dataclass(slots=True)
class Spend:
    """What a set of requests cost: exact nano-dollars, a count and tokens; of the input, the tokens read
    from a provider's cache, and what cache pricing saved (nano-dollars, negative when writes cost more)."""

    cost: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_saved: int = 0

    def add(self, cost: int, requests: int, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
            cache_saved: int = 0) -> None:
        self.cost += cost
        self.requests += requests
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cached_tokens += cached_tokens
        self.cache_saved += cache_saved

    def add_spend(self, other: Spend) -> None:
        self.add(other.cost, other.requests, other.input_tokens, other.output_tokens, other.cached_tokens,
                 other.cache_saved)

    def add_record(self, r: UsageRecord) -> None:
        self.add(r.cost, 1, r.input_tokens, r.output_tokens, r.cached_prefix_tokens or 0, r.cache_saved or 0)


@dataclass(slots=True)
class SpendSummary:
    """A total and its four groupings, each a list of (period label, spend) in label order; and, when asked
    for, the spend of each key of the account: (key id, key name, spend), oldest key first."""

    total: Spend = field(default_factory=Spend)
    by_window: list[tuple[str, Spend]] = field(default_factory=list)
    by_day: list[tuple[str, Spend]] = field(default_factory=list)
    by_week: list[tuple[str, Spend]] = field(default_factory=list)
    by_month: list[tuple[str, Spend]] = field(default_factory=list)
    by_key: list[tuple[str, str, Spend]] = field(default_factory=list)


def _second(ts: float) -> int:
    return int(ts // 1)


def _day(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%d")


def _week(second: int) -> str:
    year, week, _ = datetime.fromtimestamp(second, tz=timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


def _month(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m")


def window_label(start: int, window: int | None) -> str:
    """The period name of a budget window; credits have one period, "credits"."""
    return f"{iso(start)}/{iso(window_end(start, window))}" if window else "credits"


def spend_row(period: str, spend: Spend) -> dict:
    return {"period": period, **total_row(spend)}


def total_row(spend: Spend) -> dict:
    return {"spent": format_usd(spend.cost), "spent_nanos": spend.cost, "requests": spend.requests,
            "input_tokens": spend.input_tokens, "output_tokens": spend.output_tokens,
            "cached_tokens": spend.cached_tokens, "cache_saved": format_usd(spend.cache_saved),
            "cache_saved_nanos": spend.cache_saved}


def report_of(summary: SpendSummary) -> dict:
    """A summary in the report's JSON shape (the same as `spend_report`'s)."""
    report = {"total": total_row(summary.total)}
    for name in GROUPINGS:
        report[name] = [spend_row(period, spend) for period, spend in getattr(summary, name)]
    return report


def _group(records: Iterable[UsageRecord], label: Callable[[UsageRecord], str]) -> list[dict]:
    groups: dict[str, Spend] = {}
    for r in records:
        groups.setdefault(label(r), Spend()).add_record(r)
    return [spend_row(name, spend) for name, spend in sorted(groups.items())]


def spend_report(records: list[UsageRecord], window: int | None) -> dict:
    """Spend of records in memory grouped four ways; `window` is the key's budget window length."""

    def by_window(r: UsageRecord) -> str:
        # created_at is the admission time, so this is the window the request was charged to.
        return window_label(window_start(r.created_at, window), window)

    total = Spend()
    for r in records:
        total.add_record(r)
    return {
        "total": total_row(total),
        "by_window": _group(records, by_window),
        "by_day": _group(records, lambda r: _day(_second(r.created_at))),
        "by_week": _group(records, lambda r: _week(_second(r.created_at))),
        "by_month": _group(records, lambda r: _month(_second(r.created_at))),
    }


def summarize(buckets: Iterable[tuple[int, int, Spend]], window: int | None) -> SpendSummary:
    """Roll up spend per (UTC day number, window start) into a total and the four groupings.

    A database groups the records by those two numbers (day = created_at // 86400; the window
    start as `windows.window_start` computes it, 0 for credits); this names the periods. The work
    is proportional to the buckets, never to the records.
    """
    total = Spend()
    groups: dict[str, dict[str, Spend]] = {name: {} for name in GROUPINGS}
    label_of_day: dict[int, tuple[str, str, str]] = {}
    for day, start, spend in buckets:
        total.add_spend(spend)
        labels = label_of_day.get(day)
        if labels is None:
            second = day * DAY
            labels = label_of_day[day] = (_day(second), _week(second), _month(second))
        periods = (window_label(start, window), *labels)
        for name, period in zip(GROUPINGS, periods):
            groups[name].setdefault(period, Spend()).add_spend(spend)
    return SpendSummary(total, *(sorted(groups[name].items()) for name in GROUPINGS))
