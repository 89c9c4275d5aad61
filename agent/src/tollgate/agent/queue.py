"""The durable parking queue: one JSON file per session, safe against crashes and other processes.

Layout of a queue directory:

    .lock                 flock taken by every change (park, fail, finish, quarantine)
    parked/<id>.json      sessions waiting for their budget to reset (at most `max_entries`)
    failed/<id>.json      sessions that will not be retried, with the reason
    done/<id>.json        sessions that finished after a resume, with their output
    quarantine/<file>.*   unreadable files moved aside, each with a `.reason` note
    locks/<id>.lock       held by the process resuming that session right now

Overflow policy: when `parked/` holds `max_entries` sessions, parking a NEW session raises
`QueueFull` and logs an error; nothing already parked is evicted. Updating a session that is
already parked is always accepted (it does not grow the queue).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tollgate.agent.errors import CorruptEntry, QueueFull
from tollgate.agent.fsutil import TMP_PREFIX, TryLock, atomic_write, durable_move, durable_unlink, exclusive_lock
from tollgate.agent.records import Failure, Finished, read_failure, read_finished
from tollgate.agent.session import Session
from tollgate.agent.timefmt import format_instant, utc_from_epoch

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
_STALE_TMP_SECONDS = 600.0

PARKED, FAILED, DONE, QUARANTINE, LOCKS = "parked", "failed", "done", "quarantine", "locks"


def default_queue_dir() -> Path:
    """`$TOLLGATE_AGENT_QUEUE`, else `$XDG_STATE_HOME/tollgate/agent-queue` (~/.local/state/...)."""
    explicit = os.environ.get("TOLLGATE_AGENT_QUEUE")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tollgate" / "agent-queue"


def file_name(session_id: str) -> str:
    """The entry's file name: the id itself when it is filesystem-safe, else a hash of it."""
    if _SAFE_ID.fullmatch(session_id) and not session_id.endswith(".json"):
        return f"{session_id}.json"
    return "~" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:40] + ".json"


@dataclass(frozen=True)
class Quarantined:
    """A file that was moved aside because it could not be read as a queue entry."""

    path: Path
    reason: str


class ParkingQueue:
    """Park, list, fail and finish sessions in `directory` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], *, max_entries: int = 1000, max_done: int = 1000,
                 clock: Callable[[], float] = time.time, logger: logging.Logger | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.directory = Path(directory)
        self.max_entries = max_entries
        self.max_done = max_done
        self._clock = clock
        self._log = logger or logging.getLogger("tollgate.agent.queue")
        for sub in (PARKED, FAILED, DONE, QUARANTINE, LOCKS):
            (self.directory / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_path = self.directory / ".lock"

    # -- paths -------------------------------------------------------------------------
    def _path(self, area: str, session_id: str) -> Path:
        return self.directory / area / file_name(session_id)

    def _entries(self, area: str) -> list[Path]:
        folder = self.directory / area
        return sorted(p for p in folder.iterdir()
                      if p.name.endswith(".json") and not p.name.startswith(TMP_PREFIX) and p.is_file())

    def _now(self) -> datetime:
        return utc_from_epoch(self._clock())

    # -- parking -----------------------------------------------------------------------
    def park(self, session: Session) -> Session:
        """Write `session` to `parked/`, replacing its earlier entry if there is one.

        Raises `QueueFull` (after logging an error) if it is new and the queue is at capacity.
        """
        stored = session.copy(parked_at=self._now())
        data = stored.to_json()
        path = self._path(PARKED, session.session_id)
        with exclusive_lock(self._lock_path):
            if not path.exists() and len(self._entries(PARKED)) >= self.max_entries:
                self._log.error(
                    "parking queue %s is full (%d sessions): refused to park session %r; "
                    "its transcript is returned to the caller, nothing was evicted",
                    self.directory, self.max_entries, session.session_id,
                )
                raise QueueFull(session.session_id, self.max_entries, str(self.directory))
            atomic_write(path, data)
            durable_unlink(self._path(FAILED, session.session_id))
        return stored

    def get(self, session_id: str) -> Session | None:
        """The parked entry for `session_id`, or None (a corrupt one is quarantined)."""
        path = self._path(PARKED, session_id)
        return self._load_parked(path) if path.exists() else None

    def parked(self) -> list[Session]:
        """Every readable parked session, oldest reset first; corrupt files are quarantined."""
        self._sweep_tmp()
        sessions = [s for s in (self._load_parked(p) for p in self._entries(PARKED)) if s is not None]
        return sorted(sessions, key=lambda s: (s.reset_at.timestamp() if s.reset_at else 0.0, s.session_id))

    def __len__(self) -> int:
        return len(self._entries(PARKED))

    def remove(self, session_id: str) -> bool:
        """Drop a parked entry (the caller resumed it some other way)."""
        with exclusive_lock(self._lock_path):
            return durable_unlink(self._path(PARKED, session_id))

    # -- outcomes ----------------------------------------------------------------------
    def fail(self, session: Session, *, reason: str, message: str = "", kind: str = "",
             status: int | None = None) -> Failure:
        """Move the session to `failed/` with why; it will not be resumed again."""
        failure = Failure(session=session, reason=reason, message=message, kind=kind, status=status,
                          failed_at=self._now())
        with exclusive_lock(self._lock_path):
            atomic_write(self._path(FAILED, session.session_id), failure.to_json())
            durable_unlink(self._path(PARKED, session.session_id))
        self._log.warning("session %r moved to the failed list: %s %s", session.session_id, reason, message)
        return failure

    def finish(self, session: Session, *, stop: str, output: str | None) -> Finished:
        """Record a resumed session's result in `done/` and take it off the parked list."""
        record = Finished(session=session, stop=stop, output=output, finished_at=self._now())
        with exclusive_lock(self._lock_path):
            atomic_write(self._path(DONE, session.session_id), record.to_json())
            durable_unlink(self._path(PARKED, session.session_id))
            self._prune_done()
        return record

    def requeue_failed(self, session_id: str) -> Session:
        """Put a failed session back on the parked list with its attempts cleared."""
        record = self.failure(session_id)
        if record is None:
            raise KeyError(session_id)
        return self.park(record.session.copy(attempts=0, reset_at=None, reset_source=None))

    def failure(self, session_id: str) -> Failure | None:
        path = self._path(FAILED, session_id)
        return self._load(path, read_failure) if path.exists() else None

    def finished(self, session_id: str) -> Finished | None:
        path = self._path(DONE, session_id)
        return self._load(path, read_finished) if path.exists() else None

    def failures(self) -> list[Failure]:
        return [r for r in (self._load(p, read_failure) for p in self._entries(FAILED)) if r is not None]

    def finished_all(self) -> list[Finished]:
        return [r for r in (self._load(p, read_finished) for p in self._entries(DONE)) if r is not None]

    def quarantined(self) -> list[Quarantined]:
        folder = self.directory / QUARANTINE
        found = []
        for path in sorted(folder.iterdir()):
            if path.name.endswith(".reason"):
                continue
            note = path.with_name(path.name + ".reason")
            found.append(Quarantined(path, note.read_text("utf-8", "replace") if note.exists() else "unknown"))
        return found

    def claim(self, session_id: str) -> TryLock | None:
        """Lock a session for resuming; None if another process is resuming it right now."""
        lock = TryLock(self.directory / LOCKS / (file_name(session_id)[:-5] + ".lock"))
        return lock if lock.acquire() else None

    # -- reading and quarantine --------------------------------------------------------
    def _load_parked(self, path: Path) -> Session | None:
        def read(raw: bytes) -> Session:
            session = Session.from_json(raw)
            if file_name(session.session_id) != path.name:
                raise CorruptEntry(f"file name {path.name!r} does not match session id {session.session_id!r}")
            return session

        return self._load(path, read)

    def _load(self, path: Path, reader: Callable[[bytes], Any]) -> Any:
        """Read one entry; quarantine it (re-checked under the lock) if it does not parse."""
        try:
            return reader(path.read_bytes())
        except FileNotFoundError:
            return None
        except CorruptEntry:
            pass
        with exclusive_lock(self._lock_path):
            try:
                return reader(path.read_bytes())  # a writer may have replaced it meanwhile
            except FileNotFoundError:
                return None
            except CorruptEntry as exc:
                self._quarantine(path, str(exc))
        return None

    def _quarantine(self, path: Path, reason: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        target = self.directory / QUARANTINE / f"{path.parent.name}-{path.name}.{stamp}.{secrets.token_hex(3)}"
        durable_move(path, target)
        atomic_write(target.with_name(target.name + ".reason"), f"{path}: {reason}\n".encode())
        self._log.warning("quarantined unreadable queue entry %s -> %s: %s", path, target, reason)

    def _sweep_tmp(self) -> None:
        """Remove temp files left by writers that died mid-write (old enough to be abandoned)."""
        cutoff = time.time() - _STALE_TMP_SECONDS
        for area in (PARKED, FAILED, DONE):
            for path in (self.directory / area).glob(f"{TMP_PREFIX}*"):
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                except FileNotFoundError:
                    continue

    def _prune_done(self) -> None:
        """Keep `done/` bounded: drop the oldest results, but never one a parked parent needs."""
        entries = self._entries(DONE)
        excess = len(entries) - self.max_done
        if excess <= 0:
            return
        waiting = {name for s in self._iter_parked_quietly() for name in map(file_name, s.waiting_on)}
        entries.sort(key=lambda p: p.stat().st_mtime)
        for path in entries:
            if excess <= 0:
                break
            if path.name not in waiting:
                durable_unlink(path)
                self._log.info("pruned old result %s (done/ keeps %d)", path.name, self.max_done)
                excess -= 1

    def _iter_parked_quietly(self) -> Iterator[Session]:
        for path in self._entries(PARKED):
            try:
                yield Session.from_json(path.read_bytes())
            except (CorruptEntry, FileNotFoundError):
                continue


def format_reset(session: Session) -> str:
    return format_instant(session.reset_at) if session.reset_at else "-"
