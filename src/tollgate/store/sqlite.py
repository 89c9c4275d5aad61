"""The embedded store: one SQLite file in WAL mode, every write on one worker thread.

Statements run on a dedicated thread so the event loop never waits on the disk;
one thread also means one writer, which is what SQLite wants. Reads that need not
wait for the writes run on read threads of their own (store/reader.py): reports,
and the data plane's key reads. Around it: the
ledger journal that makes a settlement durable by one append (ledger/journal.py),
WAL checkpoints on their own thread (checkpoint.py), and the change counter in
a small shared file, read with no query (`change_seq`), and the change log behind
it (`changes_since`), which says which keys, subscriptions, accounts and plans changed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar


from tollgate.ledger.batch import LedgerBatch, StoredReservation
from tollgate.ledger.journal import BacklogLimit, Entry, Journal, JournalBacklog, JournalBusy, JournaledWrites
from tollgate.ledger.sql import apply_entries, apply_rows, journal_line, ledger_rows, rejection, set_aside
from tollgate.store.base import Changes
from tollgate.store.change_counter import ChangeCounter
from tollgate.store.change_log import changes_since
from tollgate.store.checkpoint import Checkpointer
from tollgate.store.files import private_dir, private_file, tighten
from tollgate.store.migrate import migrate
from tollgate.store.reader import ReadThread
from tollgate.store.rollup import (ROLL_UP_ROWS, ROLL_UP_SECONDS, fold_spend, queued, roll_up, roll_up_account,
                                   spend_queued)
from tollgate.store.sqlite_accounts import SQLiteAccounts
from tollgate.store.sqlite_alerts import SQLiteAlerts
from tollgate.store.sqlite_lifecycle import SQLiteLifecycle
from tollgate.store.sqlite_usage import SQLiteUsage
from tollgate.store.worker import DatabaseThread

T = TypeVar("T")

# The connection's page cache (KiB): see `_connect`.
CACHE_KIB = 64 * 1024
# The key reads' page cache (KiB): point reads of a key by its hash, its account, subscription and plan; the
# indexes' upper levels stay cached, the rows of a million keys would not anyway.
KEY_READER_CACHE_KIB = 8 * 1024
# How long a starting gateway waits for another process to finish replaying the journal.
CLAIM_WAIT_SECONDS = 5.0


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative/or/absolute.db` -> a path (three slashes, then the path as written)."""
    return Path(url.removeprefix("sqlite:///"))


class SQLiteStore(JournalBacklog, SQLiteAccounts, SQLiteLifecycle, SQLiteUsage, SQLiteAlerts):
    def __init__(self, url: str, backlog: BacklogLimit | None = None, roll_up_every: float = ROLL_UP_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        """`roll_up_every`: seconds between two roll-ups of the ledger's writes into their indexed tables
        (store/rollup.py); reads of usage roll up first whatever it is. `clock`: the wall clock whose hour
        the roll-up folds the daily aggregates up to."""
        self.path = sqlite_path(url)
        self.roll_up_every = roll_up_every
        self._clock = clock
        self._backlog_limit = backlog or BacklogLimit()
        self._thread = DatabaseThread("tollgate-sqlite", idle=self._roll_up_when_idle)
        self._reader = ReadThread(self.path)  # reads for people: dashboards, reports, the request log
        # The data plane's key reads (a cache miss, the change log): never behind a write or a roll-up.
        self._key_reader = ReadThread(self.path, "tollgate-sqlite-keys", nice=0, cache_kib=KEY_READER_CACHE_KIB)
        self._conn_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # The change counter, mirrored into a small shared file that every process maps.
        self._changes = ChangeCounter(self.path)
        self._checkpointer: Checkpointer | None = None
        self._journal = Journal(self.path)
        self._journaled: JournaledWrites | None = None  # set while this process owns the ledger
        # The roll-up (store/rollup.py): when it last ran, and where the connection's change count stood then.
        self._rolled_at = time.monotonic()
        self._changes_at_roll_up = 0  # the connection's total_changes when it last rolled up

    # -- plumbing -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash can lose the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        # Checkpoints run on their own thread (store/checkpoint.py), never inside a request's commit.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        # A page cache that holds the pages every write touches: with 100,000 keys in use, each record lands on
        # its key's spend counter, index entries and aggregate rows, spread over thousands of pages; SQLite's
        # default 2 MB reread them from the OS each time (about 10 % of the write path, bench/many_keys.py).
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        return conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._thread.run(lambda: self._call(fn))

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._conn_lock:  # the event loop may write the ledger itself when it is idle
            return self._on_conn(fn)

    def _on_conn(self, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection | None = None) -> T:
        """Run `fn` on the connection (its lock held), counting the rows it changes for the checkpointer."""
        conn = conn or self._conn
        assert conn is not None, "store is not open"
        before = conn.total_changes
        try:
            return fn(conn)
        finally:
            self._wrote(conn.total_changes - before)

    def _wrote(self, rows: int) -> None:
        if rows and self._checkpointer is not None:
            self._checkpointer.wrote(rows)

    def _roll_up(self, conn: sqlite3.Connection) -> None:
        """Move the inbox's usage records into their table and the aggregates, and fold the queued spend
        (store/rollup.py; in the caller's transaction)."""
        roll_up(conn, self._clock())
        self._rolled_at = time.monotonic()
        self._changes_at_roll_up = conn.total_changes  # its own rows do not count toward the next one

    def _roll_up_when_idle(self) -> None:
        """On the database thread, when no call came for a second: whatever waits is rolled up even when no
        write follows (a quiet gateway's last records reach `usage_records` a second after its last request;
        a busy one is never idle that long and rolls up on its cadence)."""
        conn = self._conn  # None once closing: the store rolled up then
        if conn is None:
            return
        with self._conn_lock:
            self._on_conn(self._roll_up_waiting, conn)

    def _roll_up_waiting(self, conn: sqlite3.Connection, account_id: str | None = None) -> None:
        """Roll up whatever waits (only the account's records, given `account_id`), in a transaction of its
        own: before reads of usage, when idle, at close."""
        if not queued(conn):
            return
        if account_id is None:
            self._tx(self._roll_up)(conn)
        else:
            before = conn.total_changes
            self._tx(lambda c: roll_up_account(c, account_id))(conn)
            self._changes_at_roll_up += conn.total_changes - before  # what it moved waits no more

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return run

    async def open(self) -> None:
        private_dir(self.path.parent)
        # SQLite gives the -wal and -shm files it creates the database file's mode: create that one 0600 first.
        private_file(self.path)
        for side in ("-wal", "-shm", "-journal"):
            tighten(self.path.with_name(self.path.name + side))
        self._conn = await self._thread.run(self._connect)
        await self._run(self._tx(migrate))
        await self._reader.open()
        await self._key_reader.open()
        self._checkpointer = Checkpointer(self.path, self._conn_lock)
        await self._thread.run(self._changes.open)
        await self._run(self._changes.publish)
        # A gateway that was killed left journaled batches: when no gateway runs, any process writes them in.
        if self._journal.try_lock():
            try:
                await self._run(self._tx(self._replay_journal))
                self._journal.discard_files()  # only once the transaction that holds them committed
            finally:
                self._journal.unlock()

    async def claim_ledger(self) -> None:
        """Become the one process that writes the ledger: journaled appends from now on.

        Waits a few seconds for another process's replay to end; refuses when another gateway
        serves from this database.
        """
        if self._journaled is not None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_WAIT_SECONDS
        while not self._journal.try_lock():
            if loop.time() > deadline:
                raise JournalBusy(f"another tollgate gateway is serving from {self.path}; stop it first, "
                                  "or give this one its own database")
            await asyncio.sleep(0.05)
        applied = await self._run(self._tx(self._replay_journal))
        self._journal.start(after_seq=applied)
        self._journaled = JournaledWrites(self._journal, self._apply_later, self._backlog_limit)

    async def share_ledger(self) -> None:
        """Nothing to take: the config refuses a shared ledger on SQLite (config/scale.py), and SQLite's own
        locking keeps the writes of stores opened on one file (the Redis ledger's tests) apart."""

    def _replay_journal(self, conn: sqlite3.Connection) -> int:
        """Write in what the journal holds beyond the database; the last sequence number applied.

        A start never fails on one bad entry: a line that cannot be read, and a row the database
        cannot take, are set aside in `rejected_records` with a log line (ledger/sql.py); the rest
        goes in. The files are deleted by the caller, once this transaction committed.
        """
        entries = self._journal.leftovers()
        set_aside(conn, [rejection("journal_line", f"an unreadable ledger journal line ({where})",
                                   line.decode("utf-8", "replace")) for where, line in self._journal.damaged])
        applied = apply_entries(conn, entries, skip_gaps=True)
        self._roll_up(conn)  # a start leaves nothing waiting: what it replayed is in place at once
        return applied

    def _apply_later(self, entries: list[Entry]) -> asyncio.Future:
        return self._thread.run(lambda: self._call(self._tx(lambda c: self._apply(c, entries))))

    def _apply(self, conn: sqlite3.Connection, entries: list[Entry]) -> None:
        """Journaled batches into the database, and the roll-up with them when it is due."""
        apply_entries(conn, entries)
        self._roll_up_if_due(conn)

    def _apply_rows(self, conn: sqlite3.Connection, rows: list) -> None:
        """A batch's rows written at once (no journal: a store that does not own the ledger), and the roll-up."""
        apply_rows(conn, rows)
        self._roll_up_if_due(conn)

    def _roll_up_if_due(self, conn: sqlite3.Connection) -> None:
        if (time.monotonic() - self._rolled_at >= self.roll_up_every
                or conn.total_changes - self._changes_at_roll_up >= ROLL_UP_ROWS):
            self._roll_up(conn)

    async def _ledger_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read of ledger data: every journaled batch reaches the database first."""
        if self._journaled is not None:
            await self._journaled.catch_up()
        return await self._run(fn)

    async def _report_read(self, fn: Callable[[sqlite3.Connection], T], account_id: str | None = None) -> T:
        """A read for people (a chart, a report, the request log) on the read thread (store/reader.py), after
        every journaled batch reached the database and was rolled up (store/rollup.py; only the records of
        `account_id` when the read is of that account alone): it sees every settled request, in
        `usage_records` and the aggregates alike."""
        if self._journaled is not None:
            await self._journaled.catch_up()
        await self._run(lambda c: self._roll_up_waiting(c, account_id))
        return await self._reader.run(fn)

    async def close(self) -> None:
        if self._journaled is not None:
            journaled, self._journaled = self._journaled, None
            await journaled.close()
        if self._conn is not None:  # a database at rest holds no queue (for readers outside the store)
            await self._run(self._roll_up_waiting)
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._thread.run(conn.close)
        await self._reader.close()
        await self._key_reader.close()
        self._changes.close()
        self._thread.stop()

    def change_seq(self) -> int:
        """The account model's change counter, from shared memory (no query; see change_counter.py)."""
        return self._changes.read()

    async def changes_since(self, seq: int) -> Changes:
        """The change log after `seq` (store/change_log.py), read beside the writes."""
        return await self._key_reader.run(lambda c: changes_since(c, seq))

    def _key_read(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future:
        """A read of the data plane's (a key that missed its cache) on the key read thread: every change
        published so far (`change_seq`) is committed, so the read sees it (store/reader.py)."""
        return self._key_reader.run(fn)

    async def _change(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a change to the account model, then publish the new change counter."""

        def run(conn: sqlite3.Connection) -> T:
            result = fn(conn)
            self._changes.publish(conn)
            return result

        return await self._run(run)

    # -- meta ---------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._run(lambda c: c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone())
        return row[0] if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        ))

    # -- ledger -------------------------------------------------------------

    def _journal_append(self, batch: LedgerBatch) -> None:
        assert self._journaled is not None
        self._journaled.append(journal_line(batch)[1])

    async def write_ledger(self, batch: LedgerBatch) -> None:
        if self._journaled is not None:
            self._journal_append(batch)
        else:
            rows = ledger_rows(batch)
            await self._run(self._tx(lambda c: self._apply_rows(c, rows)))

    def write_ledger_now(self, batch: LedgerBatch) -> bool:
        """Journaled: one append. Otherwise a commit here, if the connection is free this instant."""
        if self._journaled is not None:
            self._journal_append(batch)
            return True
        if self._conn is None or not self._conn_lock.acquire(blocking=False):
            return False
        rows = ledger_rows(batch)
        try:
            self._on_conn(self._tx(lambda c: self._apply_rows(c, rows)))
        finally:
            self._conn_lock.release()
        return True

    async def read_spend(self, pool: str, window_start: int) -> int:
        def read(c: sqlite3.Connection) -> tuple | None:
            if spend_queued(c):  # the settlements still queued are folded in first (store/rollup.py)
                self._tx(fold_spend)(c)
            return c.execute("SELECT spent FROM spend_counters WHERE pool = ? AND window_start = ?",
                             (pool, window_start)).fetchone()

        row = await self._ledger_read(read)
        return row[0] if row else 0

    async def load_reservations(self) -> list[StoredReservation]:
        rows = await self._ledger_read(lambda c: c.execute(
            "SELECT id, pools, amount, created_at, expires_at FROM reservations").fetchall())
        return [StoredReservation(r[0], tuple(tuple(p) for p in json.loads(r[1])), r[2], r[3], r[4]) for r in rows]
