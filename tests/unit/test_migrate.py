"""Migrations: each applied once, in number order, whatever order they land in (parallel branches)."""

from __future__ import annotations

import sqlite3

from tollgate.store import migrate as m


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_gap_is_harmless_and_a_number_that_lands_late_still_runs(tmp_path, monkeypatch):
    real = [(v, s) for v, s in m.migrations() if v <= 5]
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    monkeypatch.setattr(m, "migrations", lambda: [*real, (8, "CREATE TABLE eight (x);")])
    m.migrate(conn)  # 6 and 7 not written yet: a gap
    assert "eight" in tables(conn) and conn.execute("PRAGMA user_version").fetchone()[0] == 8
    monkeypatch.setattr(m, "migrations", lambda: [*real, (6, "CREATE TABLE six (x);"), (8, "CREATE TABLE eight (x);")])
    m.migrate(conn)  # 6 landed after 8 had run: it runs now, 8 does not run again (it would fail)
    assert {"six", "eight"} <= tables(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 8
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2, 3, 4, 5, 6, 8]


def test_a_database_from_before_the_record_of_applied_numbers_gets_only_the_newer_ones(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for version, script in m.migrations():
        if version > 5:
            break
        for statement in m.split_sql(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO spend_counters VALUES ('key:k', 100, 7)")
    conn.execute("INSERT INTO accounts VALUES ('a', 'A', 1, 0)")  # the old trigger bumps change_seq to 1
    m.migrate(conn)  # would fail on 0001's CREATE TABLE if it ran anything twice
    newest = max(v for v, _ in m.migrations())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == newest
    assert conn.execute("SELECT * FROM spend_counters").fetchall() == [("key:k", 100, 7)]  # kept, clustered
    # The change log starts after the old counter with "everything", so no reader keeps an older cache.
    assert conn.execute("SELECT seq, kind FROM changes").fetchall() == [(2, "all")]
    conn.execute("UPDATE accounts SET credits_granted = 5 WHERE id = 'a'")
    assert conn.execute("SELECT seq, kind, ref FROM changes WHERE seq > 2").fetchall() == [(3, "account", "a")]
    assert conn.execute("SELECT seq FROM change_seq").fetchone()[0] == 3
    applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == [v for v, _ in m.migrations()]
