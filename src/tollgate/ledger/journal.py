"""The ledger journal: settlements made durable by one append, written into SQLite in batches.

Every answer waits until its charge and usage record are durable. A SQLite
commit for that is a dozen system calls (WAL locks, one header and one page
write per touched page): at concurrency 1 the largest single share of a
request's cost. An append to this file is one `write()`, with the same
guarantee as SQLite's WAL at `synchronous=NORMAL`: it survives the process
being killed, not the machine losing power.

The store applies journaled batches to SQLite shortly after (and before any read
of ledger data), each batch tagged with a sequence number that is stored with
it in the same transaction. Replaying the file after a crash therefore applies
exactly the batches SQLite does not have yet. One process at a time owns the
journal (an exclusive `flock` on a lock file): the running gateway. Other
processes (the CLI) replay what a crashed gateway left when nobody owns it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("tollgate.store")

# Past this size the file is sealed and a new one started, so that a journal under
# constant load (never fully applied at one instant) can still be deleted piece by piece.
ROTATE_BYTES = 8 << 20

Entry = tuple[int, Any]  # (sequence number, the batch's rows: as the JSON journaled, or as Python values read back)


def _private_open(path: Path, flags: int) -> int:
    """Open a journal or lock file as the owner's only (0600), tightening one left wider by an older version."""
    fd = os.open(path, flags, 0o600)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & 0o600)
    except PermissionError:
        log.warning("cannot make %s private to its owner: it belongs to another user", path)
    return fd


class JournalBusy(Exception):
    """Another process owns the journal of this database."""


class Journal:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + "-ledger.log")
        self.lock_path = db_path.with_name(db_path.name + "-ledger.lock")
        self.last_seq = 0  # the last sequence number appended
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._size = 0
        self._sealed: list[tuple[Path, int]] = []  # (file, its last sequence number), oldest first
        # Lines `leftovers` could not read that no torn write explains: (where, the bytes), for the store to set aside.
        self.damaged: list[tuple[str, bytes]] = []

    # -- ownership --------------------------------------------------------------

    def try_lock(self) -> bool:
        """Take the journal's lock if nobody holds it (non-blocking).

        A flock belongs to a file, not to its name: if someone deletes or replaces the lock
        file while we take it, our lock is on a file no other process will open, and two
        gateways would both own the journal. So the path must still name the locked file.
        """
        if self._lock_fd is not None:
            return True
        while True:
            fd = _private_open(self.lock_path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return True
            os.close(fd)  # the name moved on to another file: lock that one instead

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    # -- reading what a previous owner left -----------------------------------------

    def files(self) -> list[Path]:
        """Every journal file on disk: sealed ones (by their last sequence number), then the current one."""
        sealed = sorted((p for p in self.path.parent.glob(self.path.name + ".*") if p.suffix[1:].isdigit()),
                        key=lambda p: int(p.suffix[1:]))  # (a file an operator moved aside is not one)
        return sealed + ([self.path] if self.path.exists() else [])

    def leftovers(self) -> list[Entry]:
        """Every readable entry on disk, in sequence order. A torn last line (a kill mid-write) is skipped;
        so is any other unreadable line, kept in `damaged` for the store to set aside."""
        entries: list[Entry] = []
        self.damaged = []
        for path in self.files():
            data = path.read_bytes()
            lines = data.splitlines()
            for number, line in enumerate(lines, 1):
                try:
                    seq, rows = orjson.loads(line)
                    if type(seq) is not int:
                        raise ValueError("no sequence number")
                except (orjson.JSONDecodeError, ValueError, TypeError):
                    if not line.strip():
                        continue
                    log.warning("skipping an unreadable ledger journal line (%s:%d)", path.name, number)
                    if number < len(lines) or data.endswith(b"\n"):  # not a write cut short by a kill
                        self.damaged.append((f"{path.name}:{number}", line))
                    continue
                entries.append((seq, rows))
        entries.sort(key=lambda e: e[0])
        return entries

    def discard_files(self) -> None:
        """Delete every journal file (their entries are all in the database)."""
        for path in self.files():
            path.unlink(missing_ok=True)

    # -- appending ------------------------------------------------------------------

    def start(self, after_seq: int) -> None:
        """Begin a fresh journal whose first entry is `after_seq + 1` (the lock must be held)."""
        assert self._lock_fd is not None, "take the journal lock first"
        self.discard_files()
        self._open_current()
        self.last_seq = after_seq

    def _open_current(self) -> None:
        self._fd = _private_open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._size = 0

    def append(self, rows: bytes) -> int:
        """Write one batch (its rows as JSON); durable against a process crash when this returns. Its sequence number."""
        seq = self.last_seq + 1
        line = b"[%d,%b]\n" % (seq, rows)
        assert self._fd is not None, "the journal is not open"
        try:
            written = os.write(self._fd, line)
            while written < len(line):  # a regular file takes it whole in practice; be exact anyway
                written += os.write(self._fd, line[written:])
        except OSError:
            # A full disk: cut off what part of the line got in, so that the retry's line (same
            # sequence number) starts on a line of its own instead of being glued to it.
            os.ftruncate(self._fd, self._size)
            raise
        self.last_seq = seq
        self._size += len(line)
        return seq

    def applied_through(self, seq: int) -> None:
        """Entries up to `seq` are in the database: drop the files that hold nothing newer."""
        while self._sealed and self._sealed[0][1] <= seq:
            self._sealed.pop(0)[0].unlink(missing_ok=True)
        if self._fd is None:
            return
        if seq >= self.last_seq and not self._sealed:
            if self._size:
                os.ftruncate(self._fd, 0)
                self._size = 0
        elif self._size >= ROTATE_BYTES:
            sealed = self.path.with_name(f"{self.path.name}.{self.last_seq}")
            os.rename(self.path, sealed)
            os.close(self._fd)
            self._sealed.append((sealed, self.last_seq))
            self._open_current()

    def close(self, *, all_applied: bool) -> None:
        """Stop appending; delete the files when everything is in the database, else keep them for replay."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if all_applied and self._lock_fd is not None:
            self.discard_files()
            self._sealed.clear()
        self.unlock()


# How long a journaled batch waits for others before they go to the database together. Every commit
# writes each page its rows touched once: with 100,000 keys in use each record's key sits on pages of
# its own (its index entries, its key's spend counter), so 100 ms of records in one commit wrote about a
# quarter less per record than 20 ms did (bench/README.md, issue 18). The answer never waits for this
# (the journal append made the charge durable), and a read hands off at once what is pending.
APPLY_AFTER_SECONDS = 0.1
RETRY_AFTER_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class BacklogLimit:
    """How far the journal may run ahead of the database before admissions wait (`[ledger]` config).

    Past either bound new requests wait for the database thread to catch up, then are refused
    with a 503 (ledger/embedded.py): the backlog, and the memory holding it, stay bounded however
    long the load lasts, instead of growing until the load stops.
    """

    bytes: int = 32 << 20
    seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Backlog:
    """What is journaled and not yet in the database, for the metrics."""

    bytes: int
    entries: int
    age_seconds: float  # of the oldest such entry; 0 when there is none
    limit: BacklogLimit


def backlog_stats(backlog: Backlog | None) -> dict:
    """The backlog's part of a ledger's `write_stats` (None: a store that writes straight into its database)."""
    return {
        "backlog_bytes": backlog.bytes if backlog else 0,
        "backlog_entries": backlog.entries if backlog else 0,
        "backlog_age_seconds": round(backlog.age_seconds, 3) if backlog else 0.0,
        "backlog_limit_bytes": backlog.limit.bytes if backlog else None,
        "backlog_limit_seconds": backlog.limit.seconds if backlog else None,
    }


class JournaledWrites:
    """Journaled ledger writes: durable by one append now, in SQLite in bulk a moment later.

    `append` runs on the event loop and returns once the batch is in the journal
    file. A timer hands everything journaled since the last hand-off to the
    database thread as one transaction (at concurrency 1, a few dozen requests'
    records in one commit). One hand-off is in flight at a time, so batches reach
    SQLite in sequence order; a failed one is retried, and stays in the journal
    meanwhile. Reads of ledger data call `catch_up` first, so they see every
    settled request. What waits is held as the JSON journaled (a few hundred
    bytes a request), counted against `limit`.
    """

    def __init__(self, journal: Journal, apply: Callable[[list[Entry]], asyncio.Future],
                 limit: BacklogLimit | None = None) -> None:
        """`apply(entries)` queues their transaction on the database thread and returns its future."""
        self.journal = journal
        self.limit = limit or BacklogLimit()
        self._apply = apply
        self._pending: list[Entry] = []
        self._applying: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._bytes = 0  # pending and being applied
        self._entries = 0
        self._since: float | None = None  # when the oldest entry not yet applied was journaled (monotonic)
        self._progress = asyncio.Event()  # set (and replaced) whenever a hand-off is written
        self._appended = 0  # the sequence number of the newest batch appended, and of the newest in the database
        self._applied = 0

    def append(self, rows: bytes) -> None:
        seq = self._appended = self.journal.append(rows)
        self._pending.append((seq, rows))
        self._bytes += len(rows)
        self._entries += 1
        if self._since is None:
            self._since = time.monotonic()
        if self._timer is None and self._applying is None:
            self._timer = asyncio.get_running_loop().call_later(APPLY_AFTER_SECONDS, self._on_timer)

    # -- the bound ---------------------------------------------------------------

    def over_limit(self) -> bool:
        """The backlog is past its bound (in bytes, or in the age of its oldest entry)."""
        since = self._since
        return since is not None and (self._bytes > self.limit.bytes or
                                      time.monotonic() - since > self.limit.seconds)

    async def wait_for_room(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until the backlog is back within its bound; whether it is."""
        deadline = time.monotonic() + timeout
        while self.over_limit():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), left)
            except asyncio.TimeoutError:
                return not self.over_limit()
        return True

    def backlog(self) -> Backlog:
        age = time.monotonic() - self._since if self._since is not None else 0.0
        return Backlog(self._bytes, self._entries, age, self.limit)

    # -- handing off ----------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = None
        self._start()

    def _start(self) -> None:
        if self._applying is not None or not self._pending:
            return
        entries, self._pending = self._pending, []
        started = time.monotonic()
        # Resolved by `_done` after its bookkeeping, never before: a reader that finds it done
        # finds the state after it too (awaiting a done future does not yield to the loop).
        finished = self._applying = asyncio.get_running_loop().create_future()
        self._apply(entries).add_done_callback(lambda future: self._done(entries, started, future, finished))

    def _done(self, entries: list[Entry], started: float, future: asyncio.Future, finished: asyncio.Future) -> None:
        self._applying = None
        error = RuntimeError("the ledger write was cancelled") if future.cancelled() else future.exception()
        try:
            if error is not None:
                log.error("writing journaled ledger batches into the database failed; retrying", exc_info=error)
                self._pending[:0] = entries  # everything pending came after them
                delay = RETRY_AFTER_SECONDS
            else:
                delay = APPLY_AFTER_SECONDS
                self._bytes -= sum(len(rows) for _, rows in entries)
                self._entries -= len(entries)
                # The oldest entry left was journaled after this hand-off started at the earliest.
                self._since = started if self._pending else None
                self._progress.set()
                self._progress = asyncio.Event()
                self._applied = entries[-1][0]
                self.journal.applied_through(entries[-1][0])  # (a failure here only leaves files to delete later)
            if self._pending and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)
        finally:
            if error is None:
                finished.set_result(None)
            else:
                finished.set_exception(error)
                finished.exception()  # retrieved: a reader may or may not be waiting for it

    async def catch_up(self) -> None:
        """Return once every batch appended so far is in the database (raises if writing it fails).

        Batches appended while it waits are not waited for: under a steady load there always are some, and
        a read that waited until none were left waited until the load stopped (bench/dashboard_scale.py).
        """
        target = self._appended
        while self._applied < target:
            if self._applying is None:
                self._start()
            await asyncio.shield(self._applying)

    async def close(self) -> None:
        """Write what is pending; delete the journal if all of it made it, else keep it for the next start."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            while self._pending or self._applying is not None:  # all of it, what came in meanwhile too
                await self.catch_up()
        except Exception:
            log.exception("the ledger journal stays on disk; the next start writes it into the database")
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.journal.close(all_applied=False)
            return
        self.journal.close(all_applied=True)


class JournalBacklog:
    """`LedgerStore`'s backlog methods, for a store whose ledger writes go through `self._journaled`
    (None until it journals: then there is no backlog to wait for)."""

    _journaled: JournaledWrites | None

    def backlog_full(self) -> bool:
        return self._journaled is not None and self._journaled.over_limit()

    async def backlog_room(self, timeout: float) -> bool:
        return self._journaled is None or await self._journaled.wait_for_room(timeout)

    def backlog(self) -> Backlog | None:
        return self._journaled.backlog() if self._journaled is not None else None
