"""The queue's file locks: a lock file removed or replaced while someone waits is never a trap."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from tollgate.agent import fsutil


def _locked_by_someone(path: Path) -> bool:
    """True when the file `path` names now is flocked (by anyone but a fresh descriptor)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _replace_after_first_lock(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[int]:
    """Make the first flock land on a file that is then replaced: what a slow waiter sees."""
    real_flock = fcntl.flock
    calls: list[int] = []

    def flock(fd: int, operation: int) -> None:
        real_flock(fd, operation)
        calls.append(fd)
        if len(calls) == 1:
            fresh = path.with_name(path.name + ".new")
            fresh.write_bytes(b"")
            os.replace(fresh, path)  # another process removed the lock file and made a new one

    monkeypatch.setattr(fsutil.fcntl, "flock", flock)
    return calls


@pytest.mark.parametrize("kind", ["exclusive", "try"])
def test_a_lock_taken_on_a_replaced_file_is_retaken_on_the_current_one(tmp_path, monkeypatch, kind):
    path = tmp_path / ".lock"
    calls = _replace_after_first_lock(monkeypatch, path)
    if kind == "exclusive":
        with fsutil.exclusive_lock(path):
            assert _locked_by_someone(path)
    else:
        lock = fsutil.TryLock(path)
        assert lock.acquire()
        assert _locked_by_someone(path)
        lock.release()
        assert not path.exists()
    assert len(calls) == 2  # the stale lock was dropped and the current file locked


def test_locks_exclude_each_other_and_are_released(tmp_path):
    path = tmp_path / ".lock"
    with fsutil.exclusive_lock(path):
        assert _locked_by_someone(path)
        assert not fsutil.TryLock(path).acquire()
    assert not _locked_by_someone(path)
    held = fsutil.TryLock(path)
    assert held.acquire()
    with held:
        assert held.acquire()  # acquiring again while held is a no-op, not a self-deadlock
        assert not fsutil.TryLock(path).acquire()
    assert not path.exists()
