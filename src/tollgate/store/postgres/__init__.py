"""The PostgreSQL store for scale-out: many gateway processes and machines on one database (store.py)."""

from tollgate.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
