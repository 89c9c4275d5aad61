"""Pick the store implementation from the database URL."""

from __future__ import annotations

from tollgate.ledger.journal import BacklogLimit
from tollgate.store.base import Store


def open_store(url: str, backlog: BacklogLimit | None = None) -> Store:
    """A store for `url`, not yet opened (call `await store.open()`); `backlog` bounds its ledger writes."""
    if url.startswith("sqlite:///"):
        from tollgate.store.sqlite import SQLiteStore

        return SQLiteStore(url, backlog)
    raise ValueError(f"unsupported database URL: {url!r}")
