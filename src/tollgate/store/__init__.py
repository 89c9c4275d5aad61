"""Persistence behind one interface: embedded SQLite today (a PostgreSQL store for scale-out is planned)."""

from tollgate.store.base import Store
from tollgate.store.open import open_store

__all__ = ["Store", "open_store"]
