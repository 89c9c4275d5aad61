"""Spend reports built from usage records: by budget window, UTC day, ISO week and month."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from tollgate.domain.money import format_usd
from tollgate.domain.timestamps import iso
from tollgate.domain.usage import UsageRecord
from tollgate.domain.windows import window_end, window_start


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def _week(ts: float) -> str:
    year, week, _ = datetime.fromtimestamp(ts, tz=timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


def _month(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m")


def _group(records: Iterable[UsageRecord], label: Callable[[UsageRecord], str]) -> list[dict]:
    groups: dict[str, dict] = {}
    for r in records:
        g = groups.setdefault(label(r), {"cost": 0, "requests": 0, "input_tokens": 0, "output_tokens": 0})
        g["cost"] += r.cost
        g["requests"] += 1
        g["input_tokens"] += r.input_tokens
        g["output_tokens"] += r.output_tokens
    return [
        {"period": name, "spent": format_usd(g["cost"]), "spent_nanos": g["cost"], "requests": g["requests"],
         "input_tokens": g["input_tokens"], "output_tokens": g["output_tokens"]}
        for name, g in sorted(groups.items())
    ]


def spend_report(records: list[UsageRecord], window: int | None) -> dict:
    """Spend of a set of records grouped four ways; `window` is the key's budget window length."""

    def window_label(r: UsageRecord) -> str:
        # created_at is the admission time, so this is the window the request was charged to.
        start = window_start(r.created_at, window)
        return f"{iso(start)}/{iso(window_end(start, window))}" if window else "credits"

    total = sum(r.cost for r in records)
    return {
        "total": {"spent": format_usd(total), "spent_nanos": total, "requests": len(records),
                  "input_tokens": sum(r.input_tokens for r in records),
                  "output_tokens": sum(r.output_tokens for r in records)},
        "by_window": _group(records, window_label),
        "by_day": _group(records, lambda r: _day(r.created_at)),
        "by_week": _group(records, lambda r: _week(r.created_at)),
        "by_month": _group(records, lambda r: _month(r.created_at)),
    }
