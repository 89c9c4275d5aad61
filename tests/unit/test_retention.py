"""Retention: raw usage records pruned past their age, every report, aggregate and budget still exact (issue 20).

A real SQLite store per example, written through the ledger's journal and bulk path as the
gateway writes it; the clock of the pruner is moved forward (the only thing faked). Reports
before and after pruning must be equal to the nano-dollar for every range on whole hours and
every budget window of whole hours, and `/v1/usage`'s total at any start.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_usage_sums import ACCOUNT, KEYS, OTHER, filled_store, usage
from tollgate.domain.spend import Spend, report_of
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement
from tollgate.ledger.retention import Retention
from tollgate.store.sqlite import SQLiteStore

HOUR, DAY = 3600, 86400
START = 1_767_225_600  # 2026-01-01T00:00:00Z
WHOLE_HOUR_WINDOWS = [None, HOUR, 5 * HOUR, DAY, 7 * DAY]

moments = st.floats(START, START + 4 * DAY, allow_nan=False)
records = st.lists(
    st.tuples(moments, st.sampled_from((ACCOUNT, OTHER)), st.sampled_from(KEYS[:2]), st.integers(0, 10**12),
              st.integers(0, 10**6), st.integers(0, 10**6), st.none() | st.integers(0, 10**6),
              st.none() | st.integers(-10**9, 10**9)),
    max_size=30,
)
hours = st.integers(0, 4 * 24).map(lambda h: START + h * HOUR)


def python_total(rows: list[UsageRecord], key_id: str | None, since: float) -> Spend:
    total = Spend()
    for r in rows:
        if r.account_id == ACCOUNT and (key_id is None or r.key_id == key_id) and r.created_at >= since:
            total.add_record(r)
    return total


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, hours, st.sampled_from(WHOLE_HOUR_WINDOWS), st.sampled_from([None, "key_1"]),
       st.none() | hours, st.none() | hours, moments, st.integers(1, 4))
def test_pruned_history_reports_what_the_records_did(raw, horizon, window, key_id, since, until, any_since, batch):
    rows = [usage(n, *r) for n, r in enumerate(raw)]

    async def main(folder: Path):
        store = await filled_store(folder, rows)
        try:
            before = await store.usage_summary(ACCOUNT, key_id, since, until, window, per_key=True)
            clock = lambda: horizon + DAY + 1234.5  # noqa: E731  (a day's retention, the clock moved past it)
            pruned = await Retention(store, DAY, batch, every=60, clock=clock).prune()
            after = await store.usage_summary(ACCOUNT, key_id, since, until, window, per_key=True)
            left = await store.usage_records(ACCOUNT) + await store.usage_records(OTHER)
            totals = [await store.usage_total(ACCOUNT, key_id, s) for s in (any_since, max(any_since, horizon))]
            return before, after, pruned, left, totals
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as folder:
        before, after, pruned, left, (total_any, total_kept) = asyncio.run(main(Path(folder)))
    assert pruned == sum(1 for r in rows if r.created_at < horizon)
    assert sorted(r.request_id for r in left) == sorted(r.request_id for r in rows if r.created_at >= horizon)
    assert report_of(after) == report_of(before)
    assert after.by_key == before.by_key
    # From the horizon on, raw records are all there: the total is exact from any moment.
    assert total_kept == python_total(rows, key_id, max(any_since, horizon))
    # Before it, pruned hours count whole: from the start of the hour `any_since` falls in.
    start = any_since if any_since >= horizon else any_since // HOUR * HOUR
    assert total_any == python_total(rows, key_id, start)


def _records() -> list[UsageRecord]:
    """Three days of requests, two keys, two models, some routed, a cache hit or two."""
    found = []
    for n in range(240):
        at = START + n * 1080.25  # every 18 minutes, over three days
        found.append(UsageRecord(
            f"req_{n}", at, ACCOUNT, KEYS[n % 2], "sub_1", "auto" if n % 3 else "m1", "up-m1" if n % 3 else None,
            "code" if n % 3 else None, "chat", 200 if n % 7 else 429, 100 + n, 10 + n % 13, 1_000 + 37 * n, 12.5,
            n % 5 == 0, bool(n % 2), window_start=at // DAY * DAY, cached_prefix_tokens=n % 4 or None,
            cache_saved=(n % 3) - 1, usage_basis="upstream"))
    return found


def _hourly(rows: list[UsageRecord]) -> dict:
    sums: dict = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        key = (r.account_id, int(r.created_at) // HOUR * HOUR, r.key_id, r.model, r.upstream_model or "",
               r.route or "", r.status)
        for i, value in enumerate((1, r.cost, r.input_tokens, r.output_tokens)):
            sums[key][i] += value
    return dict(sums)


def test_an_export_before_pruning_holds_every_record_and_the_budgets_stay(tmp_path):
    rows = _records()
    db = tmp_path / "retention.db"
    config = tmp_path / "tollgate.toml"
    config.write_text(f'[server]\ndatabase = "sqlite:///{db}"\n')

    async def write_and_report():
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        await store.claim_ledger()  # as the gateway: journaled, then written in bulk
        for chunk in range(0, len(rows), 50):
            part = rows[chunk:chunk + 50]
            await store.write_ledger(LedgerBatch(part, [SpendIncrement("sub:s", START, sum(r.cost for r in part))],
                                                 [], []))
        report = await store.usage_summary(ACCOUNT, since=START, until=START + 3 * DAY, window=DAY, per_key=True)
        await store.close()
        return report

    before = asyncio.run(write_and_report())
    out = tmp_path / "archive.jsonl"
    done = subprocess.run([sys.executable, "-m", "tollgate", "usage", "--config", str(config), "export",
                           "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "exported 240 usage records" in done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["request_id"], e["cost"], e["created_at"], e["cache_saved"]) for e in exported] == \
        [(r.request_id, r.cost, r.created_at, r.cache_saved) for r in rows]
    again = subprocess.run([sys.executable, "-m", "tollgate", "usage", "--config", str(config), "export",
                            "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--append" in again.stderr  # an archive is never overwritten

    async def prune_and_report():
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        try:
            # A day's retention, the clock moved to the end of the third day: two days go.
            pruned = await Retention(store, DAY, 25, every=60, clock=lambda: START + 3 * DAY).prune()
            report = await store.usage_summary(ACCOUNT, since=START, until=START + 3 * DAY, window=DAY, per_key=True)
            return pruned, report, await store.read_spend("sub:s", START), len(await store.usage_records(ACCOUNT))
        finally:
            await store.close()

    pruned, after, spent, left = asyncio.run(prune_and_report())
    gone = [r for r in rows if r.created_at < START + 2 * DAY]
    assert pruned == len(gone) == 160 and left == len(rows) - len(gone)
    assert report_of(after) == report_of(before) and after.by_key == before.by_key
    assert spent == sum(r.cost for r in rows)  # the budget's counter never depended on the records
    conn = sqlite3.connect(db)
    hourly = {tuple(r[:7]): list(r[7:]) for r in conn.execute(
        "SELECT account_id, hour, key_id, model, upstream_model, route, status, requests, cost, input_tokens,"
        " output_tokens FROM usage_hourly")}
    conn.close()
    assert hourly == _hourly(rows)
