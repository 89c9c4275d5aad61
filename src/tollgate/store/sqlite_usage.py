"""The embedded store's reads of usage: records, sums, the request log, series over time, and pruning.

A part of `SQLiteStore` kept in its own module (`SQLiteStore` inherits it), beside the ledger's writes
in `sqlite.py`. Every read goes through `_report_read`: the journaled batches reach the database
and the inbox is rolled up into `usage_records` and the aggregates first (store/rollup.py; a read of
one account, that account's records only: `roll_up_account`), so a read sees every settled request;
then the read runs on the store's read thread (store/reader.py), off the writer's, at a lower priority
than the data plane. Pruning rolls up in its own transaction first, on
the writer's thread. The SQL is in `usage_sums.py`, `request_log.py` and `usage_series.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollgate.domain.spend import Spend, SpendSummary
from tollgate.domain.usage import UsageRecord
from tollgate.store import request_log as log_rows
from tollgate.store import usage_queries, usage_sums
from tollgate.store import usage_series as series_rows
from tollgate.store.base import UnknownCursor


class SQLiteUsage:
    """Methods of `SQLiteStore` (see the module docstring); `_tx`, `_ledger_read`, `_report_read` and
    `_roll_up` are its."""

    _tx: Callable[..., Any]
    _ledger_read: Callable[..., Any]
    _report_read: Callable[..., Any]
    _roll_up: Callable[..., Any]

    async def routed_samples(self, count: int, since: float) -> list[tuple[str, str, str]]:
        rows = await self._report_read(lambda c: c.execute(*usage_queries.routed_samples_query(count, since)).fetchall())
        return [tuple(r) for r in rows]

    async def usage_records(
        self, account_id: str, key_id: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[UsageRecord]:
        return await self._report_read(lambda c: usage_sums.usage_records(c, account_id, key_id, since, until),
                                       account_id)

    async def usage_summary(
        self, account_id: str, key_id: str | None = None, since: float | None = None, until: float | None = None,
        window: int | None = None, per_key: bool = False,
    ) -> SpendSummary:
        return await self._report_read(
            lambda c: usage_sums.usage_summary(c, account_id, key_id, since, until, window, per_key), account_id)

    async def usage_total(self, account_id: str, key_id: str | None, since: float) -> Spend:
        return await self._report_read(
            lambda c: usage_sums.usage_total(c, account_id, key_id, since), account_id)

    async def prune_usage(self, before: int, limit: int, after: str = "") -> tuple[int, str | None]:
        def prune(c: Any) -> tuple[int, str | None]:
            self._roll_up(c)  # a pruned record is in the aggregates first
            return usage_sums.prune_usage(c, before, limit, after)

        return await self._ledger_read(self._tx(prune))

    async def usage_records_page(self, after_id: int, before: float | None,
                                 limit: int) -> list[tuple[int, UsageRecord]]:
        return await self._report_read(lambda c: usage_sums.records_page(c, after_id, before, limit))

    async def request_log(self, request_filter: log_rows.RequestFilter, before: int | None, limit: int,
                          scan: int = log_rows.SCAN_ROWS) -> log_rows.LogPage:
        return await self._report_read(lambda c: log_rows.requests_page(c, request_filter, before, limit, scan),
                                       request_filter.account_id)

    async def usage_series(self, account_id: str, since: float, until: float, group_by: str | None, bucket: int,
                           key_id: str | None = None) -> series_rows.UsageSeries:
        return await self._report_read(
            lambda c: series_rows.usage_series(c, account_id, since, until, group_by, bucket, key_id), account_id)

    async def spend_by_account(self, since: float, until: float, after: str | None,
                               limit: int) -> list[series_rows.AccountSpend]:
        page = await self._report_read(
            lambda c: series_rows.spend_by_account(c, since, until, after, limit))
        if page is None:
            raise UnknownCursor(after or "")
        return page
