"""Usage by end user (resellers), on the store's database thread: `usage_sums`' per-key sums, grouped by label.

An end user is a label on keys (`api_keys.end_user`), not on usage records: spend is grouped by the
label each key carries now, so relabelling a key moves its history with it, and a key without a
label falls in the group `None`.

The sums themselves are `usage_sums`' (SQL over the records, and over the hourly aggregates where old
records were pruned), never re-derived here: a report by end user adds up to the account's report to
the nano-dollar, whatever history `usage_sums` reads. What is added here works on sums only: one
row per key (`spend_by_end_user`), or one bucket per day and key (`end_user_summary`, whose keys are
one end user's, read through the `usage_key_time` index each).

The queries and folds here serve both stores; the functions of a connection run them on SQLite's
database thread, `postgres/end_users.py` on asyncpg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tollgate.domain.spend import GROUPINGS, Spend, SpendSummary
from tollgate.store import usage_sums
from tollgate.store.dialect import Query


@dataclass(frozen=True, slots=True)
class EndUserSpend:
    """One end user's keys (how many, how many active) and what they spent in the range."""

    end_user: str | None
    keys: int
    active_keys: int
    spend: Spend


def labels_query(account_id: str, end_user: str | None) -> Query:
    """(key id, label, whether active) of the account's keys (only those labelled `end_user` when given)."""
    sql, args = "SELECT id, end_user, revoked_at IS NULL FROM api_keys WHERE account_id = ?", [account_id]
    if end_user is not None:
        sql += " AND end_user = ?"
        args.append(end_user)
    return sql, args


def end_users_of(spent: dict[str, Spend], labels: Iterable[Sequence[Any]]) -> list[EndUserSpend]:
    """Per label of `labels_query`'s keys: its keys and their spend (from `spent`, by key id), labels in order
    with the unlabelled keys (None) last. A label with keys but no requests spent 0."""
    groups: dict[str | None, tuple[list[int], Spend]] = {}
    for key_id, label, active in labels:
        counts, spend = groups.setdefault(label, ([0, 0], Spend()))
        counts[0] += 1
        counts[1] += int(active)
        spend.add_spend(spent.get(key_id) or Spend())
    order = sorted(groups, key=lambda label: (label is None, label or ""))
    return [EndUserSpend(label, groups[label][0][0], groups[label][0][1], groups[label][1]) for label in order]


def spend_by_end_user(conn: sqlite3.Connection, account_id: str, since: float | None, until: float | None,
                      end_user: str | None = None) -> list[EndUserSpend]:
    """Per end-user label of the account's keys (only `end_user`'s when given): its keys and their spend in
    the range (`end_users_of`)."""
    spent = {key_id: spend for key_id, _, spend in usage_sums.usage_by_key(conn, account_id, since, until)}
    return end_users_of(spent, conn.execute(*labels_query(account_id, end_user)))


def end_user_keys_query(account_id: str, end_user: str) -> Query:
    """(id, name) of the keys labelled `end_user`, oldest first."""
    return ("SELECT id, name FROM api_keys WHERE account_id = ? AND end_user = ? ORDER BY created_at, id",
            [account_id, end_user])


def merged(keys: Iterable[tuple[str, str, SpendSummary]]) -> SpendSummary:
    """One summary of the keys' own (key id, name, its summary): summed per period, each key with its total."""
    out = SpendSummary()
    groups: dict[str, dict[str, Spend]] = {name: {} for name in GROUPINGS}
    for key_id, name, one in keys:
        out.total.add_spend(one.total)
        out.by_key.append((key_id, name, one.total))
        for grouping in GROUPINGS:
            for period, spend in getattr(one, grouping):
                groups[grouping].setdefault(period, Spend()).add_spend(spend)
    for grouping in GROUPINGS:
        setattr(out, grouping, sorted(groups[grouping].items()))
    return out


def end_user_summary(conn: sqlite3.Connection, account_id: str, end_user: str, since: float | None,
                     until: float | None) -> SpendSummary:
    """The spend of the keys labelled `end_user` in the range: a total, by UTC day, ISO week and month (one
    "credits" window, as the account-wide report), and each of those keys (oldest first) with its own."""
    keys = conn.execute(*end_user_keys_query(account_id, end_user)).fetchall()
    return merged((key_id, name, usage_sums.usage_summary(conn, account_id, key_id, since, until, None, False))
                  for key_id, name in keys)
