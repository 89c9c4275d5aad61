"""Persistence behind one interface: SQLite embedded, PostgreSQL for scale-out."""

from tollgate.store.base import Store
from tollgate.store.open import open_store

__all__ = ["Store", "open_store"]
