"""The embedded store's schema: numbered SQL files, each applied once, in number order.

Which numbers a database has had is kept in `schema_migrations`, not only the highest one
(`user_version`, still kept): migrations are written on parallel branches, so a number below
the newest applied one may land later (0006 after 0008) and must still run. A gap in the
numbers is harmless either way. A database from before that table has had every number up to
its `user_version`.
"""

from __future__ import annotations

import sqlite3
from importlib import resources


def migrations() -> list[tuple[int, str]]:
    folder = resources.files("tollgate.store").joinpath("migrations/sqlite")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def applied_versions(conn: sqlite3.Connection, available: list[int]) -> set[int]:
    """The migrations this database has had (creating the table that says so on first use)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if exists:
        return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
    before = [v for v in available if v <= current]
    conn.executemany("INSERT INTO schema_migrations (version) VALUES (?)", [(v,) for v in before])
    return set(before)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration the database has not had, in number order (inside the caller's transaction)."""
    found = migrations()
    applied = applied_versions(conn, [v for v, _ in found])
    for version, script in found:
        if version not in applied:
            for statement in split_sql(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            applied.add(version)
    if applied:
        conn.execute(f"PRAGMA user_version = {max(applied)}")


def split_sql(script: str) -> list[str]:
    """Statements of a migration; trigger bodies keep their inner semicolons."""
    statements, current = [], []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
