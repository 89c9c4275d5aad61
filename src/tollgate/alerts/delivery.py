"""Sending what the outbox holds: at most `max_concurrency` at once, each attempt written down.

A delivery is marked delivered only after a 2xx; anything else (no answer, a 3xx, 4xx or 5xx) is
retried with back-off (backoff.py) until the event's `max_age`, then marked failed. Each attempt
is signed afresh (signing.py) with the webhook's current secret, to its current URL.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from tollgate.alerts.backoff import next_attempt
from tollgate.alerts.post import DeliveryError, Poster
from tollgate.alerts.signing import SIGNATURE_HEADER, signature
from tollgate.config.schema import AlertsConfig
from tollgate.domain.alerts import AlertDelivery, Webhook
from tollgate.store.base import Store

log = logging.getLogger("tollgate.alerts")

USER_AGENT = "tollgate-webhooks/1"

# (url, body, headers, timeout, allow_private) -> the receiver's HTTP status; DeliveryError when none.
Sender = Callable[[str, bytes, Sequence[tuple[str, str]], float, bool], Awaitable[int]]


class Deliverer:
    def __init__(self, store: Store, config: AlertsConfig, hook_of: Callable[[str], Webhook | None],
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random,
                 sender: Sender | None = None) -> None:
        self.store = store
        self.config = config
        self.hook_of = hook_of
        self.clock = clock
        self.rand = rand
        self.sender = sender or Poster()
        self.wake = asyncio.Event()  # set when something may be due: a new event, an attempt done
        self.inflight: dict[int, asyncio.Task] = {}

    async def run_forever(self) -> None:
        """Send what is due; look again when woken, or at least every second (sooner with short retries)."""
        poll = min(1.0, self.config.retry_base)
        while True:
            self.wake.clear()
            try:
                await self.send_due()
            except Exception:
                log.exception("alerts: reading due deliveries failed")
            try:
                await asyncio.wait_for(self.wake.wait(), poll)
            except TimeoutError:
                pass

    async def send_due(self) -> None:
        """Start an attempt for each due delivery not in flight, as far as the concurrency allows."""
        room = self.config.max_concurrency - len(self.inflight)
        if room <= 0:
            return
        due = await self.store.due_alerts(self.clock(), room + len(self.inflight))
        loop = asyncio.get_running_loop()
        for delivery in due:
            if room <= 0:
                break
            if delivery.id in self.inflight:
                continue
            task = loop.create_task(self.attempt(delivery))
            self.inflight[delivery.id] = task
            task.add_done_callback(lambda _, i=delivery.id: self._finished(i))
            room -= 1

    def _finished(self, delivery_id: int) -> None:
        self.inflight.pop(delivery_id, None)
        self.wake.set()

    async def close(self) -> None:
        """Cut short what is in flight: those deliveries stay pending, and are sent after a restart."""
        tasks = list(self.inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def attempt(self, delivery: AlertDelivery) -> None:
        hook = self.hook_of(delivery.account_id)
        if hook is None:
            await self.store.record_alert_attempt(delivery.id, delivery.attempts, None, None, self.clock(), None,
                                                  "the account has no webhook")
            return
        attempt = delivery.attempts + 1
        status: int | None = None
        error: str | None = None
        try:
            status = await self.sender(hook.url, delivery.body, self.headers(hook, delivery, attempt),
                                       self.config.timeout, self.config.allow_private)
        except DeliveryError as exc:
            error = str(exc)[:500]
        except Exception as exc:
            log.exception("alerts: delivery %s failed unexpectedly", delivery.event_id)
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock()
        if status is not None and 200 <= status <= 299:
            await self.store.record_alert_attempt(delivery.id, attempt, None, now, None, status, None)
            return
        if error is None:
            error = f"the receiver answered HTTP {status}"
        config = self.config
        at = next_attempt(now, delivery.created_at, attempt, config.retry_base, config.retry_max_delay, config.max_age,
                          self.rand)
        if at is None:
            log.warning("alerts: giving up on %s for account %s after %d attempts: %s", delivery.event_id,
                        delivery.account_id, attempt, error)
        await self.store.record_alert_attempt(delivery.id, attempt, at, None, now if at is None else None, status,
                                              error)

    def headers(self, hook: Webhook, delivery: AlertDelivery, attempt: int) -> list[tuple[str, str]]:
        return [
            ("Content-Type", "application/json"), ("User-Agent", USER_AGENT),
            ("Tollgate-Event-Id", delivery.event_id), ("Tollgate-Event-Type", delivery.type),
            ("Tollgate-Delivery-Attempt", str(attempt)),
            (SIGNATURE_HEADER, signature(hook.secret, int(self.clock()), delivery.body)),
        ]
