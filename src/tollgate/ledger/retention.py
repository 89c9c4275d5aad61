"""Retention: raw usage records older than the configured age are pruned, in small batches.

At a steady 1,000 requests/s the raw records alone are tens of gigabytes a day. What reports
and budgets need of them outlives them: spend counters are their own table, and every record
is in its hour's aggregate (`usage_hourly`; the store rolls up what is still queued before it
prunes), which reports read for the pruned part of their range. So the raw rows can go after `[ledger]
usage_retention_days`; export them first for a billing archive (`tollgate usage export`).

Each batch is one short transaction on the database thread, queued behind whatever requests
queued first, with a pause between batches: pruning a month of backlog never holds the ledger's
writes for longer than one batch takes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tollgate.ledger.persistence import LedgerStore

log = logging.getLogger("tollgate.ledger")

HOUR = 3600
PAUSE_SECONDS = 0.05  # between two batches: the ledger's writes and reads go first


class Retention:
    def __init__(self, store: LedgerStore, keep_seconds: float, batch: int, every: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.keep_seconds = keep_seconds
        self.batch = batch
        self.every = every
        self.clock = clock

    def horizon(self) -> int:
        """Records admitted before this hour boundary are past retention."""
        return int((self.clock() - self.keep_seconds) // HOUR) * HOUR

    async def prune(self) -> int:
        """Prune every raw record past retention, a batch at a time; how many went."""
        before, total, after = self.horizon(), 0, ""
        while after is not None:
            pruned, after = await self.store.prune_usage(before, self.batch, after)
            total += pruned
            if pruned:
                await asyncio.sleep(PAUSE_SECONDS)
        if total:
            log.info("pruned %d usage records admitted before %d (past retention; their hourly aggregates stay)",
                     total, before)
        return total

    async def run_forever(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("pruning usage records failed; retrying at the next round")
            await asyncio.sleep(self.every)
