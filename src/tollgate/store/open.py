"""Pick the store implementation from the database URL."""

from __future__ import annotations

from tollgate.store.base import Store


def open_store(url: str) -> Store:
    """A store for `url`, not yet opened (call `await store.open()`)."""
    if url.startswith("sqlite:///"):
        from tollgate.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    raise ValueError(f"unsupported database URL: {url!r}")
