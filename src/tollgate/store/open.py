"""Pick the store implementation from the database URL."""

from __future__ import annotations

from pathlib import Path

from tollgate.domain.secrets import redacted_url
from tollgate.ledger.journal import BacklogLimit
from tollgate.store.base import Store


def open_store(url: str, backlog: BacklogLimit | None = None, journal_dir: Path | str | None = None) -> Store:
    """A store for `url`, not yet opened (call `await store.open()`); `backlog` bounds its ledger writes.

    `journal_dir`: where a PostgreSQL store keeps this process's ledger journal (default `.tollgate/journal/`);
    the SQLite store keeps its journal beside the database file.
    """
    if url.startswith("sqlite:///"):
        from tollgate.store.sqlite import SQLiteStore

        return SQLiteStore(url, backlog)
    if url.startswith(("postgresql://", "postgres://")):
        from tollgate.store.postgres import PostgresStore

        return PostgresStore(url, backlog, journal_dir)
    raise ValueError(f"unsupported database URL: {redacted_url(url)!r}")


