"""The PostgreSQL schema: numbered SQL files under migrations/postgresql, each applied once, in number order.

The numbers are SQLite's: the PostgreSQL baseline (0013_baseline.sql) is the SQLite schema after
its migration 0013, and every later migration comes in both dialects with the same number
(tests/unit/test_postgres_schema_versions.py checks that both folders end at the same one).
Which numbers a database has had is kept in `schema_migrations`. Many gateway processes may start
at once on one database: a transaction-scoped advisory lock lets one of them migrate while the
others wait, then find nothing left to do. A PostgreSQL migration file runs as one script (the
simple query protocol takes several statements, function bodies included).
"""

from __future__ import annotations

from importlib import resources

import asyncpg

# pg_advisory_xact_lock's key for "migrating" (any fixed 64-bit number, distinct from the ledger's).
MIGRATE_LOCK = 0x746F6C6C67617465  # "tollgate"


def migrations(dialect: str = "postgresql") -> list[tuple[int, str]]:
    """(number, SQL) of every migration file of `dialect` ("postgresql" or "sqlite"), in number order."""
    folder = resources.files("tollgate.store").joinpath(f"migrations/{dialect}")
    return sorted((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
                  for entry in folder.iterdir() if entry.name.endswith(".sql"))


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every migration the database has not had (one transaction); the numbers applied now."""
    done: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
        await conn.execute("SET LOCAL statement_timeout = 0")  # a migration of a big table takes what it takes
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, script in migrations():
            if version not in applied:
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                done.append(version)
    return done
