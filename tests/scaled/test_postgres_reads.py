"""The PostgreSQL store's reads of usage equal the embedded store's, to the nano-dollar (issue 14).

A contract over both stores: the same accounts, keys (some labelled with an end user) and usage records
go into a SQLite store and a PostgreSQL store (a real server, a fresh database per example), the same
prune moves both horizons; then every read of usage must give the same answer on both: sums by budget
window, UTC day, ISO week and month (times a fraction of a second before the edges that matter, pruned
history read from the hourly aggregates), totals, records, export pages, series, spend by account, the
request log page by page, end users. SQLite's reads are themselves held to Python's grouping of the
records (tests/unit/test_usage_sums.py); here a fixed example is held to known numbers too, so a mistake
both stores shared could not pass.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.scaled.test_postgres_reads_support import ACCOUNT, KEYS, OTHER, both_stores, seed, usage
from tests.unit.test_usage_sums import moments, utc, windows
from tollgate.domain.spend import report_of, spend_report
from tollgate.store.base import UnknownCursor
from tollgate.store.request_log import RequestFilter
from tollgate.store.usage_series import DAY, HOUR

END = 4_200_000_000.0  # after every moment drawn

records = st.lists(
    st.tuples(moments, st.sampled_from((ACCOUNT, ACCOUNT, OTHER)), st.sampled_from(KEYS[:2]),
              st.integers(0, 10**15), st.integers(0, 10**9), st.integers(0, 10**9),
              st.none() | st.integers(0, 10**9), st.none() | st.integers(-10**12, 10**12)),
    max_size=30,
)
horizons = st.none() | moments.map(lambda t: int(t // HOUR) * HOUR)


async def pages(read, limit: int) -> list:
    """Every row of a cursor-paged read (bounded), page by page."""
    seen: list = []
    before = None
    for _ in range(100):
        page = await read(before, limit)
        seen += page
        if len(page) < limit:
            return seen
        before = page[-1].id if hasattr(page[-1], "id") else page[-1][0]
    raise AssertionError("more pages than rows")


async def bounded_pages(store: Any, f: RequestFilter, limit: int, scan: int) -> list[tuple[list[int], int | None]]:
    """Every page of a filter whose pages read at most `scan` records each: (its ids, where it stopped), page by
    page, each going on from the page before's last row, or from where its walk stopped (bounded)."""
    seen: list[tuple[list[int], int | None]] = []
    before = None
    for _ in range(200):
        page = await store.request_log(f, before, limit + 1, scan=scan)
        seen.append(([r.id for r in page[:limit]], page.stopped_at))
        if len(page) > limit:
            before = page[limit - 1].id
        elif page.stopped_at is not None:
            before = page.stopped_at
        else:
            return seen
    raise AssertionError("more pages than rows")


def day_of(series: Any) -> dict:
    """An hourly series summed by UTC day and group: what the series in day buckets must be."""
    days: dict = {}
    for p in series.points:
        key = (p.start - p.start % DAY, p.group)
        days[key] = days.get(key) or type(p.sums)()
        days[key].add(p.sums)
    return days


async def reads(store: Any, key_id: str | None, since: float | None, until: float | None,
                window: int | None) -> dict[str, Any]:
    """Every read of usage the two stores must agree on, by name."""
    lo, hi = since or 0.0, until or END
    out: dict[str, Any] = {
        "summary": await store.usage_summary(ACCOUNT, key_id, since, until, window, per_key=True),
        "total": await store.usage_total(ACCOUNT, key_id, lo),
        "records": await store.usage_records(ACCOUNT, key_id, since, until),
        "export": await pages(lambda after, n: store.usage_records_page(after or 0, until, n), 4),
        "accounts": await store.spend_by_account(lo, hi, None, 10),
        "next accounts": await store.spend_by_account(lo, hi, ACCOUNT, 10),
        "end users": await store.usage_by_end_user(ACCOUNT, since, until),
        "alice": await store.usage_by_end_user(ACCOUNT, since, until, "alice"),
        "alice summary": await store.end_user_summary(ACCOUNT, "alice", since, until),
        "samples": sorted(await store.routed_samples(1000, lo)),
    }
    for group in (None, "key", "model", "upstreamModel", "route", "status"):
        for bucket in (HOUR, DAY):
            out[f"series {group} {bucket}"] = await store.usage_series(ACCOUNT, lo, hi, group, bucket, key_id)
    filters = {
        "log": RequestFilter(ACCOUNT, key_id, since=since, until=until),
        "log refusals": RequestFilter(ACCOUNT, status_min=400, status_max=599),
        "log model": RequestFilter(ACCOUNT, model="big", status_min=429, status_max=429),
        "log alice": RequestFilter(ACCOUNT, end_user="alice", since=since),
        "log operator": RequestFilter(None, since=since, until=until),
    }
    filters["log rare"] = RequestFilter(ACCOUNT, key_id, model="big", status_min=500, status_max=599)
    for name, f in filters.items():
        out[name] = await pages(lambda before, n, f=f: store.request_log(f, before, n), 3)
        out[f"{name} bounded"] = await bounded_pages(store, f, 2, 3)
    return out


def compare(postgres: Any, raw: list[tuple], horizon: int | None, key_id: str | None, since: float | None,
            until: float | None, window: int | None) -> dict[str, Any]:
    """Every read on both stores of the same records (pruned before `horizon`); the PostgreSQL store's answers."""
    rows = [usage(n, *r) for n, r in enumerate(raw)]

    async def main(folder: Path) -> tuple[dict, dict]:
        async with both_stores(postgres, folder) as stores:
            answers = []
            for store in stores:
                await seed(store, rows, horizon)
                answers.append(await reads(store, key_id, since, until, window))
            return answers[0], answers[1]

    with tempfile.TemporaryDirectory() as folder:
        embedded, scaled = asyncio.run(main(Path(folder)))
    for name in embedded:
        assert scaled[name] == embedded[name], name
    for name in [n for n in embedded if n.endswith(" bounded")]:  # the bounded walk gives the filter's rows, once
        assert [i for ids, _ in embedded[name] for i in ids] == [r.id for r in embedded[name[:-len(" bounded")]]]
    for group in (None, "key", "model", "upstreamModel", "route", "status"):  # whole days: the daily aggregates
        days = {(p.start, p.group): p.sums for p in embedded[f"series {group} {DAY}"].points}
        assert days == day_of(embedded[f"series {group} {HOUR}"]), group
    return scaled


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, horizons, st.sampled_from([None, "key_1"]), st.none() | moments, st.none() | moments, windows)
@example([(utc(2026, 12, 27, 23) + 3599.9999996, ACCOUNT, "key_1", 2**53 + 1, 1, 2, None, None),
          (utc(2026, 12, 28), ACCOUNT, "key_2", 2**60, 3, 4, 5, -6)], utc(2026, 12, 28, 1), None, None, None, 5 * 3600)
@example([(utc(2027, 1, 3, 23, 59, 59) + 0.999, ACCOUNT, "key_1", 7, 1, 1, None, None),
          (utc(2027, 1, 4, 0, 0, 0), ACCOUNT, "key_1", 9, 1, 1, None, None)], None, "key_1", None, None, 7 * 3600)
def test_every_read_of_usage_equals_the_embedded_stores(postgres, raw, horizon, key_id, since, until,
                                                        window):
    compare(postgres, raw, horizon, key_id, since, until, window)


def test_a_fixed_history_gives_known_numbers(postgres):
    """Sums past 2**53 exact, records 0.4 µs before midnight in the day (and ISO week) before, pruned hours
    from the aggregates and later ones from raw records (a window of whole hours would read those from the
    aggregates too): known numbers, so that a mistake both stores made alike could not pass."""
    sunday_night = utc(2026, 12, 27, 23) + 3599.9999996  # 2026-W52's last instant
    monday_night = utc(2026, 12, 28, 23) + 3599.9999996
    raw = [(sunday_night, ACCOUNT, "key_1", 2**53 + 1, 1, 2, None, None),
           (utc(2026, 12, 28), ACCOUNT, "key_2", 2**60, 3, 4, 5, -6),
           (utc(2026, 12, 28, 2), ACCOUNT, "key_2", 1, 0, 0, None, None),
           (monday_night, ACCOUNT, "key_1", 10, 0, 0, None, None)]
    horizon = utc(2026, 12, 28, 1)  # the first two records are pruned
    window = 3 * 3600 + 1
    got = compare(postgres, raw, horizon, None, None, None, window)
    summary = got["summary"]
    assert summary.total.cost == 2**53 + 1 + 2**60 + 1 + 10
    assert [period for period, _ in summary.by_week] == ["2026-W52", "2026-W53"]
    assert [(period, spend.cost) for period, spend in summary.by_day] == [("2026-12-27", 2**53 + 1),
                                                                          ("2026-12-28", 2**60 + 11)]
    assert summary.by_key[0][2].cost == 2**53 + 11 and summary.by_key[1][2].cost == 2**60 + 1
    assert [r.cost for r in got["records"]] == [1, 10]  # the raw records before the horizon are gone
    assert got["total"].cost == summary.total.cost
    rows = [usage(n, *r) for n, r in enumerate(raw)]
    assert report_of(summary)["by_window"] == spend_report(rows, window)["by_window"]


def test_cursors_of_another_account_are_refused(postgres):
    raw = [(1_000_000.0 + n, account, "key_1", 1, 1, 1, None, None) for n in range(4) for account in (ACCOUNT, OTHER)]
    rows = [usage(n, *r) for n, r in enumerate(raw)]

    async def main(folder: Path) -> None:
        async with both_stores(postgres, folder) as stores:
            for store in stores:
                await seed(store, rows, None)
                foreign = (await store.request_log(RequestFilter(OTHER), None, 1))[0].id
                with pytest.raises(UnknownCursor):
                    await store.request_log(RequestFilter(ACCOUNT), foreign, 10)
                with pytest.raises(UnknownCursor):
                    await store.spend_by_account(0, END, "acct_nobody", 10)
                before = await store.request_log(RequestFilter(None), foreign, 10)  # the operator's log: by id
                assert [r.id for r in before] == list(range(foreign - 1, 0, -1))

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(Path(folder)))
