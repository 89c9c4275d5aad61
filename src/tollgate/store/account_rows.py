"""Account-model rows in SQLite: the column lists the store selects, and rows -> model objects."""

from __future__ import annotations

import json
import sqlite3

from tollgate.domain.accounts import ApiKey, Plan, Subscription

PLAN_COLUMNS = "slug, name, price_monthly, period_days, window_seconds, budget_per_window, rpm, tpm, models, source"
SUB_COLUMNS = "id, account_id, plan_slug, status, created_at, current_period_start, current_period_end, cancel_at_period_end"
KEY_COLUMNS = (
    "id, account_id, type, name, prefix, created_at, subscription_id, budget_limit, budget_window,"
    " end_user, metadata, revoked_at"
)

def plan_of(row: sqlite3.Row) -> Plan:
    return Plan(
        slug=row[0], name=row[1], price_monthly=row[2], period_days=row[3], window=row[4],
        budget_per_window=row[5], rpm=row[6], tpm=row[7],
        models=tuple(json.loads(row[8])) if row[8] else None, source=row[9],
    )


def subscription_of(row: sqlite3.Row) -> Subscription:
    return Subscription(*row[:7], cancel_at_period_end=bool(row[7]))


def api_key_of(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row[0], account_id=row[1], type=row[2], name=row[3], prefix=row[4], created_at=row[5],
        subscription_id=row[6], budget_limit=row[7], budget_window=row[8], end_user=row[9],
        metadata=json.loads(row[10]) if row[10] else None, revoked_at=row[11],
    )
