"""Alert webhooks and their outbox in SQLite (migration 0011; docs/alerts.md): rows <-> records.

Functions of a connection, run on the store's database thread by `SQLiteStore`'s alert methods.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from tollgate.domain.accounts import Subscription
from tollgate.domain.alerts import AlertDelivery, AlertEvent, Webhook
from tollgate.store.account_rows import SUB_COLUMNS, subscription_of

WEBHOOK_COLUMNS = "account_id, url, secret, thresholds, credits_low, expiring_notice, created_at, updated_at"
OUTBOX_COLUMNS = ("id, event_id, account_id, type, body, created_at, attempts, next_attempt_at, delivered_at,"
                  " failed_at, last_status, last_error")


def webhook_of(row: tuple) -> Webhook:
    return Webhook(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], row[5], row[6], row[7])


def delivery_of(row: tuple) -> AlertDelivery:
    return AlertDelivery(row[0], row[1], row[2], row[3], bytes(row[4]), *row[5:])


def get_webhook(c: sqlite3.Connection, account_id: str) -> Webhook | None:
    row = c.execute(f"SELECT {WEBHOOK_COLUMNS} FROM alert_webhooks WHERE account_id = ?", (account_id,)).fetchone()
    return webhook_of(row) if row else None


def list_webhooks(c: sqlite3.Connection) -> list[Webhook]:
    return [webhook_of(r) for r in c.execute(f"SELECT {WEBHOOK_COLUMNS} FROM alert_webhooks ORDER BY account_id")]


def put_webhook(c: sqlite3.Connection, w: Webhook) -> None:
    c.execute(
        f"INSERT INTO alert_webhooks ({WEBHOOK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(account_id) DO UPDATE SET"
        " url = excluded.url, secret = excluded.secret, thresholds = excluded.thresholds,"
        " credits_low = excluded.credits_low, expiring_notice = excluded.expiring_notice,"
        " updated_at = excluded.updated_at",
        (w.account_id, w.url, w.secret, json.dumps(list(w.thresholds)), w.credits_low, w.expiring_notice,
         w.created_at, w.updated_at),
    )


def delete_webhook(c: sqlite3.Connection, account_id: str, at: float) -> bool:
    """Remove the account's webhook; what was still to be delivered is given up on (in one transaction)."""
    gone = c.execute("DELETE FROM alert_webhooks WHERE account_id = ?", (account_id,)).rowcount > 0
    c.execute("UPDATE alert_outbox SET failed_at = ?, next_attempt_at = NULL, last_error = 'the webhook was removed'"
              " WHERE account_id = ? AND next_attempt_at IS NOT NULL", (at, account_id))
    c.execute("UPDATE alert_outbox SET keep_until = ? WHERE account_id = ? AND keep_until IS NULL", (at, account_id))
    return gone


def enqueue(c: sqlite3.Connection, events: Sequence[AlertEvent]) -> list[str]:
    """Add the events not stored yet (by event id), due at once; the ids of those added."""
    added = []
    for e in events:
        cursor = c.execute(
            "INSERT OR IGNORE INTO alert_outbox (event_id, account_id, type, body, created_at, keep_until,"
            " next_attempt_at) VALUES (?,?,?,?,?,?,?)",
            (e.event_id, e.account_id, e.type, e.body, e.created_at, e.keep_until, e.created_at))
        if cursor.rowcount:
            added.append(e.event_id)
    return added


def due(c: sqlite3.Connection, now: float, limit: int) -> list[AlertDelivery]:
    rows = c.execute(f"SELECT {OUTBOX_COLUMNS} FROM alert_outbox WHERE next_attempt_at IS NOT NULL"
                     " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?", (now, limit)).fetchall()
    return [delivery_of(r) for r in rows]


def record_attempt(c: sqlite3.Connection, delivery_id: int, attempts: int, next_attempt_at: float | None,
                   delivered_at: float | None, failed_at: float | None, status: int | None, error: str | None) -> None:
    # Only a row still pending: one given up on meanwhile (its webhook removed) stays so.
    c.execute("UPDATE alert_outbox SET attempts = ?, next_attempt_at = ?, delivered_at = ?, failed_at = ?,"
              " last_status = ?, last_error = ? WHERE id = ? AND next_attempt_at IS NOT NULL",
              (attempts, next_attempt_at, delivered_at, failed_at, status, error, delivery_id))


def recent(c: sqlite3.Connection, account_id: str, limit: int) -> list[AlertDelivery]:
    rows = c.execute(f"SELECT {OUTBOX_COLUMNS} FROM alert_outbox WHERE account_id = ? ORDER BY id DESC LIMIT ?",
                     (account_id, limit)).fetchall()
    return [delivery_of(r) for r in rows]


def pending_count(c: sqlite3.Connection, account_id: str) -> int:
    return c.execute("SELECT count(*) FROM alert_outbox WHERE account_id = ? AND next_attempt_at IS NOT NULL",
                     (account_id,)).fetchone()[0]


def subscriptions_near_end(c: sqlite3.Connection, since: float, now: float) -> list[Subscription]:
    """Subscriptions of accounts with a webhook whose period ended after `since` or ends within the
    webhook's notice of `now`: the ones a sweep may have something to say about."""
    columns = ", ".join(f"s.{name.strip()}" for name in SUB_COLUMNS.split(","))
    rows = c.execute(
        f"SELECT {columns} FROM alert_webhooks w JOIN subscriptions s ON s.account_id = w.account_id"
        " WHERE s.current_period_end > ? AND s.current_period_end <= ? + w.expiring_notice"
        " ORDER BY s.current_period_end, s.id", (since, now)).fetchall()
    return [subscription_of(r) for r in rows]


PRUNE_BATCH = 10_000


def prune(c: sqlite3.Connection, finished_before: float, now: float) -> int:
    """Forget finished rows made before `finished_before` whose event can no longer be detected again
    (at most PRUNE_BATCH at a time: the database thread is shared with the rest of the gateway)."""
    return c.execute(
        "DELETE FROM alert_outbox WHERE id IN (SELECT id FROM alert_outbox WHERE created_at < ?"
        " AND next_attempt_at IS NULL AND keep_until IS NOT NULL AND keep_until < ? LIMIT ?)",
        (finished_before, now, PRUNE_BATCH)).rowcount
