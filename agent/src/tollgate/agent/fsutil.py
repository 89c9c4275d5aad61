"""Crash-safe file writes and cross-process locks for the parking queue (POSIX).

A write goes to a temporary file in the same directory, is fsynced, renamed over the
target and the directory is fsynced: after a crash at any instant the target holds
either the old content or the new, never a torn mix. Locks are `fcntl.flock`, which
the kernel drops when a process dies, so a SIGKILLed holder never wedges the queue.
Every lock, blocking or not, checks after locking that its path still names the file it
locked (see `_lock_file`): a process that waited on a lock file which was removed or
replaced meanwhile locks the current file instead of an orphan nobody else will open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically and durably. Transcripts are private: 0600."""
    tmp = path.parent / f"{TMP_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def durable_move(source: Path, target: Path) -> None:
    """Rename `source` to `target` (same filesystem) and fsync both directories."""
    os.replace(source, target)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)


def durable_unlink(path: Path) -> bool:
    """Remove `path` durably; False when it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def _same_file(path: Path, fd: int) -> bool:
    """True while `path` still names the file open as `fd` (not removed, not replaced)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _lock_file(path: Path, *, wait: bool) -> int | None:
    """Open `path` (creating it) and flock it; the locked descriptor, or None when busy.

    A flock belongs to a file, not to its name. If the file is unlinked or replaced while we
    wait (a releasing `TryLock` removes its file; a person may delete a stale `.lock`), the
    lock we get is on a file nobody else will ever open, and two processes would both think
    they hold the lock. So after locking, check that the path still names the locked file,
    and start over on the new one if it does not.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(path, fd):
            return fd
        os.close(fd)  # closing the descriptor drops the stale lock


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if needed) for the block; blocks until free."""
    fd = _lock_file(path, wait=True)
    assert fd is not None  # a blocking lock is never "busy"
    try:
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class TryLock:
    """A non-blocking, per-item flock whose file is removed on release.

    Removing lock files is racy unless the holder checks, after locking, that the path
    still names the file it locked; `_lock_file` does that and retries, so two processes
    can never both believe they hold the same item.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when the lock is now held by us; False when another process holds it."""
        if self._fd is None:
            self._fd = _lock_file(self.path, wait=False)
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> TryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
