"""The PostgreSQL store's alert webhooks and their outbox (docs/alerts.md): `store/alert_rows.py`'s statements.

A part of `PostgresStore`. The same SQL as the embedded store's; what SQLite learns from a cursor's
rowcount comes here from the command's status. Changes that are more than one statement (removing a
webhook and giving up on its deliveries; a batch of events) are one transaction.

Many processes share the outbox here (`--workers N`, many machines), each with its delivery loop:
`due_alerts` claims the rows it hands out with `FOR UPDATE SKIP LOCKED` (alert_rows.claim_due_query).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from tollgate.domain.accounts import Subscription
from tollgate.domain.alerts import AlertDelivery, AlertEvent, Webhook
from tollgate.store import alert_rows as rows
from tollgate.store.account_rows import subscription_of
from tollgate.store.dialect import Query
from tollgate.store.postgres.usage_reading import PostgresReading, execute, fetch


class PostgresAlerts(PostgresReading):
    """The alert methods of `PostgresStore`."""

    async def _alert_rows(self, query: Query) -> list[asyncpg.Record]:
        return await self._call(lambda conn: fetch(conn, query))

    async def _alert_change(self, query: Query) -> int:
        return await self._call(lambda conn: execute(conn, query))

    async def get_webhook(self, account_id: str) -> Webhook | None:
        found = await self._alert_rows((rows.GET_WEBHOOK, [account_id]))
        return rows.webhook_of(found[0]) if found else None

    async def list_webhooks(self) -> list[Webhook]:
        return [rows.webhook_of(r) for r in await self._alert_rows((rows.LIST_WEBHOOKS, []))]

    async def put_webhook(self, webhook: Webhook) -> None:
        await self._alert_change((rows.PUT_WEBHOOK, rows.webhook_args(webhook)))

    async def delete_webhook(self, account_id: str, at: float) -> bool:
        async def delete(conn: asyncpg.Connection) -> bool:
            gone = await execute(conn, (rows.DELETE_WEBHOOK, [account_id])) > 0
            for query in rows.given_up(account_id, at):
                await execute(conn, query)
            return gone

        return await self._call(delete, transaction=True)

    async def enqueue_alerts(self, events: Sequence[AlertEvent]) -> list[str]:
        async def enqueue(conn: asyncpg.Connection) -> list[str]:
            return [e.event_id for e in events if await execute(conn, (rows.ENQUEUE, rows.enqueue_args(e)))]

        return await self._call(enqueue, transaction=True)

    async def due_alerts(self, now: float, limit: int) -> list[AlertDelivery]:
        return rows.claimed(await self._alert_rows(rows.claim_due_query(now, limit, skip_locked=True)))

    async def record_alert_attempt(self, delivery_id: int, attempts: int, next_attempt_at: float | None,
                                   delivered_at: float | None, failed_at: float | None, status: int | None,
                                   error: str | None) -> None:
        await self._alert_change(rows.attempt_query(delivery_id, attempts, next_attempt_at, delivered_at, failed_at,
                                               status, error))

    async def recent_alerts(self, account_id: str, limit: int) -> list[AlertDelivery]:
        return [rows.delivery_of(r) for r in await self._alert_rows(rows.recent_query(account_id, limit))]

    async def pending_alerts(self, account_id: str) -> int:
        return (await self._alert_rows((rows.PENDING, [account_id])))[0][0]

    async def subscriptions_near_end(self, since: float, now: float) -> list[Subscription]:
        return [subscription_of(tuple(r)) for r in await self._alert_rows(rows.near_end_query(since, now))]

    async def prune_alerts(self, finished_before: float, now: float) -> int:
        return await self._alert_change(rows.prune_query(finished_before, now))
