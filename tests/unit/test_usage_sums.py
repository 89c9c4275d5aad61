"""Usage sums grouped by SQLite equal the grouping of the same records in Python, to the nano-dollar.

A real SQLite store per example; records at the edges of days, ISO weeks (week 53, years whose
week 1 starts in December), months, leap days and budget windows, a fraction of a second either
side. `spend_report` (records in memory, `datetime` per record) is the reference; the store's
`usage_summary` (sums per day and window in SQL, named by `summarize`) must give the same report.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tollgate.accounts.service import AccountService
from tollgate.cli import operator
from tollgate.domain.accounts import Account, ApiKey
from tollgate.domain.spend import Spend, report_of, spend_report
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.base import UnknownCursor
from tollgate.store.sqlite import SQLiteStore

ACCOUNT, OTHER = "acct_a", "acct_b"
KEYS = ("key_1", "key_2", "key_idle")  # key_idle never spends


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp())


# Midnights where days, ISO weeks, months and years turn over awkwardly.
EDGES = [
    0, utc(2020, 12, 31), utc(2021, 1, 1), utc(2021, 1, 4), utc(2024, 2, 29), utc(2024, 3, 1),
    utc(2024, 12, 30), utc(2026, 1, 1), utc(2026, 11, 29, 15), utc(2026, 12, 28), utc(2027, 1, 4), utc(2038, 1, 19),
]
WINDOWS = [None, 1, 3600, 5 * 3600, 7 * 3600, 86399, 86400, 2 * 86400, 7 * 86400, 365 * 86400]
FRACTIONS = [0.0, 1e-7, 0.25, 0.5, 0.9999, 0.9999996, 0.99999999]

moments = st.one_of(
    st.builds(lambda edge, seconds, fraction: max(0.0, edge + seconds + fraction),
              st.sampled_from(EDGES), st.integers(-3 * 86400, 3 * 86400) | st.integers(-2, 2),
              st.sampled_from(FRACTIONS) | st.floats(0, 1, exclude_max=True)),
    st.floats(0, 4_102_444_800, allow_nan=False),  # to 2100
)
records = st.lists(
    st.tuples(moments, st.sampled_from((ACCOUNT, OTHER)), st.sampled_from(KEYS[:2]),
              st.integers(0, 10**15), st.integers(0, 10**9), st.integers(0, 10**9),
              st.none() | st.integers(0, 10**9), st.none() | st.integers(-10**12, 10**12)),
    max_size=40,
)
windows = st.sampled_from(WINDOWS) | st.integers(1, 365 * 86400)


def usage(n: int, at: float, account: str, key: str, cost: int, input_tokens: int, output_tokens: int,
          cached: int | None = None, saved: int | None = None) -> UsageRecord:
    return UsageRecord(f"req_{n}", at, account, key if account == ACCOUNT else f"{key}_{account}", None, "m", None,
                       None, "chat", 200, input_tokens, output_tokens, cost, 1.0, False, False,
                       cached_prefix_tokens=cached, cache_saved=saved)


async def filled_store(folder: Path, rows: list[UsageRecord]) -> SQLiteStore:
    store = SQLiteStore(f"sqlite:///{folder / 'usage.db'}")
    await store.open()
    await store.create_account(Account(ACCOUNT, "a", 0))
    for n, key_id in enumerate(KEYS):
        await store.create_api_key(ApiKey(key_id, ACCOUNT, "credit", f"name {key_id}", "sk_x", n), f"hash_{key_id}")
    await store.write_ledger(LedgerBatch(rows, [], [], []))
    return store


def python_by_key(rows: list[UsageRecord]) -> list[tuple[str, str, Spend]]:
    found = []
    for key_id in KEYS:
        spend = Spend()
        for r in rows:
            if r.account_id == ACCOUNT and r.key_id == key_id:
                spend.add_record(r)
        found.append((key_id, f"name {key_id}", spend))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, windows, st.sampled_from([None, "key_1"]), st.one_of(st.none(), moments), st.one_of(st.none(), moments))
@example([(utc(2026, 11, 29, 14) + 3599.9999996, ACCOUNT, "key_1", 5, 1, 2)], 5 * 3600, "key_1", None, None)
@example([(86399.9999997, ACCOUNT, "key_1", 1, 0, 0), (86400.0, ACCOUNT, "key_1", 2, 0, 0)], None, None, None, None)
def test_sql_grouping_equals_the_python_grouping(raw, window, key_id, since, until):
    rows = [usage(n, *r) for n, r in enumerate(raw)]

    def chosen(r: UsageRecord) -> bool:
        return (r.account_id == ACCOUNT and (key_id is None or r.key_id == key_id)
                and (since is None or r.created_at >= since) and (until is None or r.created_at < until))

    async def main(folder: Path):
        store = await filled_store(folder, rows)
        try:
            return (await store.usage_summary(ACCOUNT, key_id, since, until, window, per_key=True),
                    await store.usage_records(ACCOUNT, key_id, since, until))
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as folder:
        summary, stored = asyncio.run(main(Path(folder)))
    expected = [r for r in rows if chosen(r)]
    assert sorted(r.request_id for r in stored) == sorted(r.request_id for r in expected)
    assert report_of(summary) == spend_report(expected, window)
    in_range = [r for r in rows if (since is None or r.created_at >= since) and (until is None or r.created_at < until)]
    assert summary.by_key == python_by_key(in_range)
    assert summary.total.cost == sum(r.cost for r in expected)  # integers all the way: exact


def test_reports_name_their_periods_in_utc():
    """A fixed point, so that a shared mistake in both groupings cannot pass unseen."""
    at = utc(2026, 11, 29, 15, 30)
    report = spend_report([usage(1, at + 0.5, ACCOUNT, "key_1", 140_000_000, 10, 20)], 5 * 3600)
    assert report["by_window"][0]["period"] == "2026-11-29T15:00:00Z/2026-11-29T20:00:00Z"
    assert [report[g][0]["period"] for g in ("by_day", "by_week", "by_month")] == ["2026-11-29", "2026-W48", "2026-11"]
    assert report["total"] == {"spent": "0.14", "spent_nanos": 140_000_000, "requests": 1, "input_tokens": 10,
                               "output_tokens": 20, "cached_tokens": 0, "cache_saved": "0.00", "cache_saved_nanos": 0}
    new_year = spend_report([usage(1, utc(2027, 1, 3, 23, 59, 59) + 0.999, ACCOUNT, "key_1", 1, 0, 0)], 7 * 3600)
    assert new_year["by_week"][0]["period"] == "2026-W53" and new_year["by_day"][0]["period"] == "2027-01-03"
    assert new_year["by_window"][0]["period"] == "2027-01-03T21:00:00Z/2027-01-04T00:00:00Z"


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_pages_walk_every_key_once_and_refuse_a_foreign_cursor(tmp_path, limit):
    async def main():
        store = SQLiteStore(f"sqlite:///{tmp_path / 'pages.db'}")
        await store.open()
        try:
            for account in (ACCOUNT, OTHER):
                await store.create_account(Account(account, account, 0))
            # Ties on created_at are ordered by id; the other account's keys interleave.
            for n in range(7):
                for account in (ACCOUNT, OTHER):
                    await store.create_api_key(ApiKey(f"key_{account}_{6 - n}", account, "credit", "k", "sk_x", n // 3),
                                               f"hash_{account}_{n}")
            seen, after = [], None
            for _ in range(10):
                page = await store.list_api_keys(ACCOUNT, after=after, limit=limit)
                seen += [k.id for k in page]
                if len(page) < limit:
                    break
                after = page[-1].id
            with pytest.raises(UnknownCursor):
                await store.list_api_keys(ACCOUNT, after=f"key_{OTHER}_0", limit=limit)
            accounts = [a.id for a in await store.list_accounts(after=ACCOUNT, limit=5)]
            # The CLI lists everything a page at a time.
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(operator, "PAGE", limit)
                cli_keys = [k.id for k in await operator._keys(AccountService(store), ACCOUNT)]
                assert [a.id for a in await operator._accounts(AccountService(store))] == [ACCOUNT, OTHER]
            assert cli_keys == seen
            return seen, [k.id for k in await store.list_api_keys(ACCOUNT)], accounts
        finally:
            await store.close()

    seen, everything, accounts = asyncio.run(main())
    assert seen == everything and len(set(seen)) == 7
    key_order = [(k // 3, f"key_{ACCOUNT}_{6 - k}") for k in range(7)]
    assert everything == [key for _, key in sorted(key_order)]
    assert accounts == [OTHER]
