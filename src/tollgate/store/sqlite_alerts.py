"""The embedded store's alert webhooks and their outbox (SQL in `alert_rows.py`; docs/alerts.md).

A part of `SQLiteStore` kept in its own module (`SQLiteStore` inherits it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tollgate.domain.accounts import Subscription
from tollgate.domain.alerts import AlertDelivery, AlertEvent, Webhook
from tollgate.store import alert_rows


class SQLiteAlerts:
    """Methods of `SQLiteStore`; `_run` and `_tx` are its."""

    _run: Callable[..., Any]
    _tx: Callable[..., Any]

    async def get_webhook(self, account_id: str) -> Webhook | None:
        return await self._run(lambda c: alert_rows.get_webhook(c, account_id))

    async def list_webhooks(self) -> list[Webhook]:
        return await self._run(alert_rows.list_webhooks)

    async def put_webhook(self, webhook: Webhook) -> None:
        await self._run(lambda c: alert_rows.put_webhook(c, webhook))

    async def delete_webhook(self, account_id: str, at: float) -> bool:
        return await self._run(self._tx(lambda c: alert_rows.delete_webhook(c, account_id, at)))

    async def enqueue_alerts(self, events: Sequence[AlertEvent]) -> list[str]:
        return await self._run(self._tx(lambda c: alert_rows.enqueue(c, events)))

    async def due_alerts(self, now: float, limit: int) -> list[AlertDelivery]:
        return await self._run(lambda c: alert_rows.due(c, now, limit))

    async def record_alert_attempt(self, delivery_id: int, attempts: int, next_attempt_at: float | None,
                                   delivered_at: float | None, failed_at: float | None, status: int | None,
                                   error: str | None) -> None:
        await self._run(lambda c: alert_rows.record_attempt(c, delivery_id, attempts, next_attempt_at, delivered_at,
                                                            failed_at, status, error))

    async def recent_alerts(self, account_id: str, limit: int) -> list[AlertDelivery]:
        return await self._run(lambda c: alert_rows.recent(c, account_id, limit))

    async def pending_alerts(self, account_id: str) -> int:
        return await self._run(lambda c: alert_rows.pending_count(c, account_id))

    async def subscriptions_near_end(self, since: float, now: float) -> list[Subscription]:
        return await self._run(lambda c: alert_rows.subscriptions_near_end(c, since, now))

    async def prune_alerts(self, finished_before: float, now: float) -> int:
        return await self._run(lambda c: alert_rows.prune(c, finished_before, now))
