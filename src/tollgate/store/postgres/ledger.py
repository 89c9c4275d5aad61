"""The ledger's rows on PostgreSQL (`LedgerStore`): a local journal per process, applied in batches.

Every process writes settlements (usage records, spend increments, reservations) durably by one
append to its own journal slot (journal_slots.py, ledger/journal.py), then `JournaledWrites` hands
what was appended to PostgreSQL a moment later as one transaction that also stores the slot's last
entry number (ledger_rows.py). While PostgreSQL is down the journal grows, bounded as SQLite's is by
`BacklogLimit` (`backlog_full`, `backlog_room`: admissions wait, then get a 503), and is retried with
a growing pause; nothing is dropped. A slot whose process died is replayed by whoever takes it next,
or by any process's periodic sweep of unlocked slots.

`read_spend` is PostgreSQL's counter plus this process's increments journaled and not yet applied, read
against the slot's applied number from the same snapshot, so no increment is counted twice or missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from tollgate.domain.refusals import StoreUnavailable
from tollgate.ledger.batch import LedgerBatch, StoredReservation
from tollgate.ledger.journal import RETRY_AFTER_SECONDS, BacklogLimit, Entry, JournalBacklog, JournalBusy, JournaledWrites
from tollgate.ledger.sql import journal_line, rejection
from tollgate.store.postgres import ledger_rows as pg_rows
from tollgate.store.postgres.connection import PgSettings, connect
from tollgate.store.postgres.journal_slots import Slot, orphans, take_slot
from tollgate.store.postgres.retention import prune_usage

log = logging.getLogger("tollgate.store")

# Who keeps this database's budget state, as a session advisory lock ("tollgate" + 1): one gateway's
# embedded ledger holds it exclusively; every process of a shared (Redis) ledger holds it shared. So
# an embedded ledger and a shared one never both count the same budgets (each would let the whole
# budget through).
LEDGER_LOCK = 0x746F6C6C67617466
CLAIM_WAIT_SECONDS = 5.0
# Unlocked slots (of processes that died) are looked for this often (seconds).
SWEEP_SECONDS = 5.0
# A failed hand-off is retried after RETRY_AFTER_SECONDS, then after a pause that doubles up to this.
MAX_RETRY_SECONDS = 8.0
# A hand-off may be a whole outage's backlog (bounded by BacklogLimit): its transaction gets this long.
APPLY_SECONDS = 60.0
_SPEND = ("SELECT (SELECT spent FROM spend_counters WHERE pool = $1 AND window_start = $2),"
          " (SELECT applied_seq FROM ledger_journals WHERE slot = $3)")
Counters = dict[tuple[str, int], int]


class PostgresLedger(JournalBacklog):
    """Methods of `PostgresStore` (see the module docstring); `_call` and `_settings` are its."""

    _settings: PgSettings
    _call: Callable[..., Awaitable[Any]]
    _backlog_limit: BacklogLimit
    _journal_dir: Path
    _database_id: str  # (store.py) which database the journal slots of this process are for

    def _init_ledger(self) -> None:
        self._slot: Slot | None = None
        self._journaled: JournaledWrites | None = None
        self._unapplied: dict[int, Counters] = {}  # journal entry -> its spend increments, until applied
        self._applied_seq = 0
        self._spend_reads = 0  # read_spend calls in flight: `_unapplied` is pruned only when none are
        self._apply_failures = 0
        self._ledger_lock: asyncpg.Connection | None = None
        self._ledger_lock_shared = False
        self._sweeper: asyncio.Task | None = None

    async def _open_ledger(self) -> None:
        """Take a journal slot, replay what it holds, start journaling; replay dead processes' slots."""
        slot = take_slot(self._journal_dir, self._database_id)
        try:
            self._applied_seq = await self._replay(slot)
        except BaseException:
            slot.journal.unlock()
            raise
        slot.journal.start(after_seq=self._applied_seq)
        self._slot = slot
        self._journaled = JournaledWrites(slot.journal, self._apply_later, self._backlog_limit)
        await self._sweep()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="tollgate-pg-journals")

    async def _close_ledger(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._journaled is not None:
            journaled, self._journaled = self._journaled, None
            await journaled.close()  # what PostgreSQL did not take stays in the slot for the next start
        self._slot = None
        if self._ledger_lock is not None:
            conn, self._ledger_lock = self._ledger_lock, None
            conn.terminate()

    async def _replay(self, slot: Slot) -> int:
        """Write in what `slot`'s files hold beyond the database, then delete them; the slot's last applied entry."""
        entries = slot.journal.leftovers()
        damaged = [rejection("journal_line", f"an unreadable ledger journal line ({where})",
                             line.decode("utf-8", "replace")) for where, line in slot.journal.damaged]

        async def replay(conn: asyncpg.Connection) -> int:
            await pg_rows.set_aside(conn, damaged)
            return await pg_rows.apply_entries(conn, slot.id, entries, skip_gaps=True)

        applied = await self._call(replay, transaction=True)
        slot.journal.discard_files()  # only once the transaction that holds them committed
        return applied

    async def _sweep(self) -> None:
        assert self._slot is not None
        for slot in orphans(self._journal_dir, self._slot.number, self._database_id):
            log.warning("replaying ledger journal slot %d, left by a process that stopped", slot.number)
            await self._replay(slot)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self._sweep()
                if self._ledger_lock is not None and self._ledger_lock.is_closed():
                    log.error("the connection holding the ledger's lock on %s was lost; taking it again",
                              self._settings.safe_url)
                    self._ledger_lock = None
                    await self._lock_ledger(self._ledger_lock_shared)
            except Exception as exc:  # down: the next round tries again
                log.warning("cannot replay ledger journals now: %s", exc)

    # -- the ledger store protocol --------------------------------------------------

    async def claim_ledger(self) -> None:
        """Become the one process that runs the embedded ledger on this database (the lock, exclusively)."""
        await self._lock_ledger(shared=False)

    async def share_ledger(self) -> None:
        """Join the processes that keep this database's budgets in a shared ledger (the lock, shared)."""
        await self._lock_ledger(shared=True)

    async def _lock_ledger(self, shared: bool) -> None:
        if self._ledger_lock is not None:
            return
        conn = await connect(self._settings)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_WAIT_SECONDS
        take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        while not await conn.fetchval(f"SELECT {take}($1)", LEDGER_LOCK):
            if loop.time() > deadline:
                await conn.close(timeout=1)
                if shared:
                    raise JournalBusy(f"a tollgate gateway serves from {self._settings.safe_url} with its embedded"
                                      " ledger (no redis): stop it, or configure the same redis for it")
                raise JournalBusy(f"another tollgate gateway is serving from {self._settings.safe_url} with its"
                                  " embedded ledger, or with a shared (redis) one; stop it first, or give this one"
                                  " its own database")
            await asyncio.sleep(0.05)
        self._ledger_lock, self._ledger_lock_shared = conn, shared

    def _append(self, batch: LedgerBatch) -> None:
        assert self._journaled is not None and self._slot is not None, "the store is not open"
        parts, rows = journal_line(batch)
        self._journaled.append(rows)
        if parts[1]:
            counters: Counters = {}
            for pool, start, amount in parts[1]:
                counters[(pool, start)] = counters.get((pool, start), 0) + amount
            self._unapplied[self._slot.journal.last_seq] = counters

    async def write_ledger(self, batch: LedgerBatch) -> None:
        self._append(batch)

    def write_ledger_now(self, batch: LedgerBatch) -> bool:
        self._append(batch)
        return True

    def _apply_later(self, entries: list[Entry]) -> asyncio.Future:
        return asyncio.ensure_future(self._apply(entries))

    async def _apply(self, entries: list[Entry]) -> None:
        assert self._slot is not None
        slot_id = self._slot.id
        if self._apply_failures:  # PostgreSQL is down or refusing: back off (JournaledWrites waited RETRY_AFTER)
            pause = min(MAX_RETRY_SECONDS, RETRY_AFTER_SECONDS * 2 ** self._apply_failures)
            await asyncio.sleep(pause - RETRY_AFTER_SECONDS)
        try:
            applied = await self._call(lambda c: pg_rows.apply_entries(c, slot_id, entries), transaction=True,
                                       timeout=max(APPLY_SECONDS, self._settings.statement_timeout))
        except BaseException:
            self._apply_failures = min(self._apply_failures + 1, 8)
            raise
        self._apply_failures = 0
        self._applied_seq = max(self._applied_seq, applied)
        self._forget_applied()

    def _forget_applied(self) -> None:
        if self._spend_reads == 0:
            for seq in [s for s in self._unapplied if s <= self._applied_seq]:
                del self._unapplied[seq]

    async def _ledger_sync(self) -> None:
        """Wait until everything this process journaled so far is in PostgreSQL (before a read of ledger data)."""
        if self._journaled is None:
            return
        try:
            async with asyncio.timeout(self._settings.statement_timeout):
                await self._journaled.catch_up()
        except TimeoutError as exc:
            raise StoreUnavailable() from exc

    async def read_spend(self, pool: str, window_start: int) -> int:
        slot_id = self._slot.id if self._slot is not None else ""
        self._spend_reads += 1
        try:
            row = await self._call(lambda c: c.fetchrow(_SPEND, pool, window_start, slot_id))
            applied = row[1] or 0
            pending = sum(counters.get((pool, window_start), 0)
                          for seq, counters in self._unapplied.items() if seq > applied)
            return (row[0] or 0) + pending
        finally:
            self._spend_reads -= 1
            self._forget_applied()

    async def load_reservations(self) -> list[StoredReservation]:
        await self._ledger_sync()
        rows = await self._call(lambda c: c.fetch("SELECT id, pools, amount, created_at, expires_at FROM reservations"))
        return [StoredReservation(r[0], tuple(tuple(p) for p in orjson.loads(r[1])), r[2], r[3], r[4]) for r in rows]

    async def prune_usage(self, before: int, limit: int, after: str = "") -> tuple[int, str | None]:
        """Delete up to `limit` raw records admitted before `before`, account by account (usage_sums.prune_usage)."""
        await self._ledger_sync()
        return await self._call(lambda c: prune_usage(c, before, limit, after), transaction=True)

