"""The store's files are the owner's only: created 0600 (directory 0700), and tightened when found wider."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.sqlite import SQLiteStore

SIDE_FILES = ("-wal", "-shm", "-seq", "-ledger.log", "-ledger.lock")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """The most permissive umask, so that only the store's own care can make its files private."""
    old = os.umask(0)
    yield
    os.umask(old)


def record(request_id: str) -> UsageRecord:
    return UsageRecord(request_id, 1_764_000_000.0, "acct", "key", "sub", "m", None, None, "chat", 200, 3, 4,
                       7, 1.0, False, False, window_start=1_764_000_000, client="test/1")


async def serve_a_little(db: Path) -> dict[str, int]:
    """Open the store as a gateway does (owning the ledger), write, and give the mode of every file it has open."""
    store = SQLiteStore(f"sqlite:///{db}")
    await store.open()
    try:
        await store.claim_ledger()
        await store.write_ledger(LedgerBatch([record("r1")], [], [], []))
        await store.set_meta("k", "v")
        return {p.name: mode(p) for p in db.parent.iterdir()}
    finally:
        await store.close()


def test_a_new_store_creates_its_directory_0700_and_every_file_0600(tmp_path, open_umask):
    db = tmp_path / "data" / ".tollgate" / "tollgate.db"
    modes = asyncio.run(serve_a_little(db))
    assert set(modes) >= {db.name, *(db.name + side for side in SIDE_FILES)}, modes
    assert set(modes.values()) == {0o600}, modes
    assert mode(db.parent) == 0o700


def test_files_left_wider_by_an_older_version_are_tightened(tmp_path):
    own = tmp_path / ".tollgate"
    own.mkdir(mode=0o755)
    os.chmod(own, 0o755)
    db = own / "tollgate.db"
    asyncio.run(serve_a_little(db))
    # What an older tollgate left: the same files readable by everyone, and a -wal and a journal besides.
    for side in ("-wal", "-shm", "-ledger.log"):
        (own / (db.name + side)).write_bytes(b"")
    left = sorted(own.iterdir())
    for path in left:
        os.chmod(path, 0o666)
    assert {p.name for p in left} == {db.name, *(db.name + side for side in SIDE_FILES)}
    modes = asyncio.run(serve_a_little(db))
    assert set(modes) >= {db.name, *(db.name + side for side in SIDE_FILES)}, modes
    assert set(modes.values()) == {0o600}, modes
    assert mode(own) == 0o700


def test_a_directory_the_operator_named_is_left_as_it_is(tmp_path):
    shared = tmp_path / "srv"
    shared.mkdir()
    os.chmod(shared, 0o755)
    asyncio.run(serve_a_little(shared / "gateway.db"))
    assert mode(shared) == 0o755  # not ours to change: only the files in it are
    assert mode(shared / "gateway.db") == 0o600
