"""Both dialects' migrations are numbered alike: the PostgreSQL baseline is SQLite's schema after 0013, and every
later migration comes in both folders with the same number, so that a schema version means one schema."""

from __future__ import annotations

from tollgate.store.postgres.schema import migrations


def test_both_dialects_end_at_the_same_version():
    sqlite = [version for version, _ in migrations("sqlite")]
    postgresql = [version for version, _ in migrations("postgresql")]
    assert postgresql[0] == 13, "the PostgreSQL baseline stands for SQLite's migrations 1 to 13"
    assert max(sqlite) == max(postgresql)
    assert [v for v in sqlite if v > 13] == postgresql[1:], "every later number is in both folders"


def test_the_baseline_has_every_table_of_the_sqlite_schema():
    """A table SQLite's migrations create (and do not drop again) is in the PostgreSQL schema too: in the baseline,
    or (made by a later migration) in that migration's PostgreSQL twin."""
    import re

    created, dropped = set(), set()
    for _, script in migrations("sqlite"):
        created |= set(re.findall(r"CREATE TABLE (\w+)", script))
        dropped |= set(re.findall(r"DROP TABLE (\w+)", script))
        created |= {new for _, new in re.findall(r"ALTER TABLE (\w+) RENAME TO (\w+)", script)}
        dropped |= {old for old, _ in re.findall(r"ALTER TABLE (\w+) RENAME TO (\w+)", script)}
    tables = {t for _, script in migrations("postgresql") for t in re.findall(r"CREATE TABLE (\w+)", script)}
    # SQLite's own mechanics: the tables its ledger writes land in before they are rolled up in bulk
    # (PostgreSQL writes each batch with one statement per table, its statement trigger does the aggregates).
    sqlite_only = {"usage_unrolled", "usage_inbox", "spend_unfolded"}
    missing = {t for t in created - dropped - sqlite_only if not t.endswith(("_lean", "_clustered"))} - tables
    assert not missing, missing
