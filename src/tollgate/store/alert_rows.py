"""Alert webhooks and their outbox (migration 0011; docs/alerts.md): the SQL, rows <-> records.

The statements are the same text for SQLite and PostgreSQL (`?` placeholders; `dialect.numbered` for
asyncpg): the builders here return (sql, args), the functions of a connection run them on SQLite's
database thread for `SQLiteStore`'s alert methods, and `postgres/alerts.py` runs them on asyncpg.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from tollgate.domain.accounts import Subscription
from tollgate.domain.alerts import AlertDelivery, AlertEvent, Webhook
from tollgate.store.account_rows import SUB_COLUMNS, subscription_of
from tollgate.store.dialect import Query

WEBHOOK_COLUMNS = "account_id, url, secret, thresholds, credits_low, expiring_notice, created_at, updated_at"
OUTBOX_COLUMNS = ("id, event_id, account_id, type, body, created_at, attempts, next_attempt_at, delivered_at,"
                  " failed_at, last_status, last_error")

GET_WEBHOOK = f"SELECT {WEBHOOK_COLUMNS} FROM alert_webhooks WHERE account_id = ?"
LIST_WEBHOOKS = f"SELECT {WEBHOOK_COLUMNS} FROM alert_webhooks ORDER BY account_id"
PUT_WEBHOOK = (
    f"INSERT INTO alert_webhooks ({WEBHOOK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(account_id) DO UPDATE SET"
    " url = excluded.url, secret = excluded.secret, thresholds = excluded.thresholds,"
    " credits_low = excluded.credits_low, expiring_notice = excluded.expiring_notice,"
    " updated_at = excluded.updated_at")
DELETE_WEBHOOK = "DELETE FROM alert_webhooks WHERE account_id = ?"
# An event already stored (by event id) is left as it is: stored and sent once.
ENQUEUE = ("INSERT INTO alert_outbox (event_id, account_id, type, body, created_at, keep_until, next_attempt_at)"
           " VALUES (?,?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING")
PENDING = "SELECT count(*) FROM alert_outbox WHERE account_id = ? AND next_attempt_at IS NOT NULL"
PRUNE_BATCH = 10_000


def webhook_of(row: Sequence[Any]) -> Webhook:
    return Webhook(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], row[5], row[6], row[7])


def delivery_of(row: Sequence[Any]) -> AlertDelivery:
    return AlertDelivery(row[0], row[1], row[2], row[3], bytes(row[4]), *tuple(row)[5:])


def webhook_args(w: Webhook) -> list[Any]:
    return [w.account_id, w.url, w.secret, json.dumps(list(w.thresholds)), w.credits_low, w.expiring_notice,
            w.created_at, w.updated_at]


def given_up(account_id: str, at: float) -> list[Query]:
    """What a removed webhook leaves: its pending deliveries given up on, every finished row kept from `at` on."""
    return [("UPDATE alert_outbox SET failed_at = ?, next_attempt_at = NULL, last_error = 'the webhook was removed'"
             " WHERE account_id = ? AND next_attempt_at IS NOT NULL", [at, account_id]),
            ("UPDATE alert_outbox SET keep_until = ? WHERE account_id = ? AND keep_until IS NULL", [at, account_id])]


def enqueue_args(e: AlertEvent) -> list[Any]:
    """`ENQUEUE`'s arguments: due at once."""
    return [e.event_id, e.account_id, e.type, e.body, e.created_at, e.keep_until, e.created_at]


# How long a delivery `due` hands out stays with the process it went to (seconds): longer than any attempt.
CLAIM_LEASE = 300.0


def claim_due_query(now: float, limit: int, skip_locked: bool) -> Query:
    """Deliveries due by `now` (the most overdue first), each claimed in the same statement: its next attempt
    moved a lease ahead, so that another process's delivery loop (PostgreSQL: `skip_locked`, two processes
    never pick one row) or this one's next round does not send it again. The attempt's outcome replaces the
    lease; a process that dies holding one leaves the row to be tried when it ends (at least once)."""
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    return (f"UPDATE alert_outbox SET next_attempt_at = ? WHERE id IN (SELECT id FROM alert_outbox"
            f" WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?{lock})"
            f" RETURNING {OUTBOX_COLUMNS}", [now + CLAIM_LEASE, now, limit])


def claimed(found: Sequence[Sequence[Any]]) -> list[AlertDelivery]:
    """The deliveries `claim_due_query` returned, in the order they were enqueued (RETURNING keeps none)."""
    return sorted((delivery_of(r) for r in found), key=lambda d: d.id)


def attempt_query(delivery_id: int, attempts: int, next_attempt_at: float | None, delivered_at: float | None,
                  failed_at: float | None, status: int | None, error: str | None) -> Query:
    # Only a row still pending: one given up on meanwhile (its webhook removed) stays so.
    return ("UPDATE alert_outbox SET attempts = ?, next_attempt_at = ?, delivered_at = ?, failed_at = ?,"
            " last_status = ?, last_error = ? WHERE id = ? AND next_attempt_at IS NOT NULL",
            [attempts, next_attempt_at, delivered_at, failed_at, status, error, delivery_id])


def recent_query(account_id: str, limit: int) -> Query:
    return f"SELECT {OUTBOX_COLUMNS} FROM alert_outbox WHERE account_id = ? ORDER BY id DESC LIMIT ?", [account_id, limit]


def near_end_query(since: float, now: float) -> Query:
    """Subscriptions of accounts with a webhook whose period ended after `since` or ends within the
    webhook's notice of `now`: the ones a sweep may have something to say about. (The times are cast:
    PostgreSQL would take a parameter beside an integer column for an integer, and `now` has a fraction.)"""
    columns = ", ".join(f"s.{name.strip()}" for name in SUB_COLUMNS.split(","))
    return (f"SELECT {columns} FROM alert_webhooks w JOIN subscriptions s ON s.account_id = w.account_id"
            " WHERE s.current_period_end > CAST(? AS DOUBLE PRECISION)"
            " AND s.current_period_end <= CAST(? AS DOUBLE PRECISION) + w.expiring_notice"
            " ORDER BY s.current_period_end, s.id", [since, now])


def prune_query(finished_before: float, now: float) -> Query:
    """Forget finished rows made before `finished_before` whose event can no longer be detected again
    (at most PRUNE_BATCH at a time: the database is shared with the rest of the gateway)."""
    return ("DELETE FROM alert_outbox WHERE id IN (SELECT id FROM alert_outbox WHERE created_at < ?"
            " AND next_attempt_at IS NULL AND keep_until IS NOT NULL AND keep_until < ? LIMIT ?)",
            [finished_before, now, PRUNE_BATCH])


# -- SQLite: functions of a connection, on the store's database thread --

def get_webhook(c: sqlite3.Connection, account_id: str) -> Webhook | None:
    row = c.execute(GET_WEBHOOK, (account_id,)).fetchone()
    return webhook_of(row) if row else None


def list_webhooks(c: sqlite3.Connection) -> list[Webhook]:
    return [webhook_of(r) for r in c.execute(LIST_WEBHOOKS)]


def put_webhook(c: sqlite3.Connection, w: Webhook) -> None:
    c.execute(PUT_WEBHOOK, webhook_args(w))


def delete_webhook(c: sqlite3.Connection, account_id: str, at: float) -> bool:
    """Remove the account's webhook; what was still to be delivered is given up on (in one transaction)."""
    gone = c.execute(DELETE_WEBHOOK, (account_id,)).rowcount > 0
    for sql, args in given_up(account_id, at):
        c.execute(sql, args)
    return gone


def enqueue(c: sqlite3.Connection, events: Sequence[AlertEvent]) -> list[str]:
    """Add the events not stored yet (by event id), due at once; the ids of those added."""
    return [e.event_id for e in events if c.execute(ENQUEUE, enqueue_args(e)).rowcount]


def due(c: sqlite3.Connection, now: float, limit: int) -> list[AlertDelivery]:
    return claimed(c.execute(*claim_due_query(now, limit, skip_locked=False)).fetchall())


def record_attempt(c: sqlite3.Connection, delivery_id: int, attempts: int, next_attempt_at: float | None,
                   delivered_at: float | None, failed_at: float | None, status: int | None, error: str | None) -> None:
    c.execute(*attempt_query(delivery_id, attempts, next_attempt_at, delivered_at, failed_at, status, error))


def recent(c: sqlite3.Connection, account_id: str, limit: int) -> list[AlertDelivery]:
    return [delivery_of(r) for r in c.execute(*recent_query(account_id, limit)).fetchall()]


def pending_count(c: sqlite3.Connection, account_id: str) -> int:
    return c.execute(PENDING, (account_id,)).fetchone()[0]


def subscriptions_near_end(c: sqlite3.Connection, since: float, now: float) -> list[Subscription]:
    return [subscription_of(r) for r in c.execute(*near_end_query(since, now)).fetchall()]


def prune(c: sqlite3.Connection, finished_before: float, now: float) -> int:
    return c.execute(*prune_query(finished_before, now)).rowcount
