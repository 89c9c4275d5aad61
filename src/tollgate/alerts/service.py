"""The alerts of a running gateway: webhooks in memory, events detected off the request path, delivery.

The request path calls `settled` after every settlement and `exhausted` on every budget refusal
(`proxy/flow.py`, through its `SpendWatcher` protocol). Both are O(1) and never await: a dict
lookup for the account's webhook (none: return), a comparison of the pool's spend with its
thresholds, a set lookup of what was already sent; only when something new is crossed does it
note the pool (a bounded dict) and wake the detector. Three background tasks do the rest:

- the detector turns noted pools into events and stores them in the outbox (`Store.enqueue_alerts`,
  unique by event id: the same event detected twice is stored once);
- the sweep, every `[alerts] sweep_interval`, finds subscriptions about to expire or just expired
  (and now and then reloads the webhooks and forgets old deliveries);
- the sender (delivery.py) posts what is due, at most `max_concurrency` at once, and writes down
  each attempt: delivered on a 2xx, else retried with back-off until `max_age`, then "failed".

An event is in the outbox before anything is sent, and marked delivered only after a 2xx, so it
is delivered at least once across restarts (a crash between the 2xx and the mark sends it again:
receivers deduplicate by its id). docs/alerts.md has the whole contract.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tollgate.alerts import events
from tollgate.alerts.delivery import Deliverer, Sender
from tollgate.alerts.settings import configure
from tollgate.config.schema import AlertsConfig
from tollgate.domain.accounts import KeyContext
from tollgate.domain.alerts import AlertDelivery, AlertEvent, Webhook
from tollgate.domain.pools import Pool, PoolState
from tollgate.domain.refusals import BudgetExhausted, Conflict, NotFound
from tollgate.domain.windows import window_start
from tollgate.ledger.protocol import BudgetLedger
from tollgate.store.base import Store

log = logging.getLogger("tollgate.alerts")

MAX_PENDING_POOLS = 100_000  # pools noted and not yet looked at; beyond, new ones are dropped (and counted)
MAX_FIRED = 200_000  # events remembered as stored, to skip them on the request path; past it, forgotten
MAX_UNDELIVERED_FOR_TEST = 100  # a test ping is refused while the account has this many deliveries pending
PRUNE_EVERY = 3600.0
# Webhooks are changed through this gateway's API, which updates its memory at once; reading them all
# again this often picks up a change written to the database by anything else.
RELOAD_EVERY = 600.0


@dataclass(slots=True)
class _Noted:
    """A pool the request path saw cross something: its state then (None: read it), and whether a
    request was refused for it."""

    account_id: str
    pool: Pool
    window_start: int
    state: PoolState | None
    exhausted: bool


class Alerts:
    def __init__(self, store: Store, ledger: BudgetLedger, config: AlertsConfig, clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random, sender: Sender | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self.config = config
        self.clock = clock
        self._hooks: dict[str, Webhook] = {}
        self._hooks_version = 0  # moved by every change made here, so a sweep's older read does not undo it
        self._noted: dict[tuple[str, int], _Noted] = {}
        self._fired: set[tuple] = set()
        self._detect = asyncio.Event()
        self.deliverer = Deliverer(store, config, self._hooks_get, clock, rand, sender)
        self._tasks: list[asyncio.Task] = []
        self._next_prune = 0.0
        self._next_reload = 0.0
        self.dropped = 0  # pools not noted because too many were waiting

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        await self._reload()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._detect_forever(), name="alerts-detect"),
                       loop.create_task(self._sweep_forever(), name="alerts-sweep"),
                       loop.create_task(self.deliverer.run_forever(), name="alerts-send")]

    async def close(self) -> None:
        """Stop; what was noted goes into the outbox first. Deliveries cut short stay pending (sent after a restart)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.deliverer.close()
        try:
            await self._store_noted()
        except Exception:
            log.exception("alerts: storing the last detected events failed")

    def _hooks_get(self, account_id: str) -> Webhook | None:
        return self._hooks.get(account_id)

    # -- the request path: O(1), never awaits ---------------------------------

    def settled(self, ctx: KeyContext, states: tuple[PoolState, ...]) -> None:
        """A request settled; `states` are its pools right after."""
        hook = self._hooks.get(ctx.account.id)
        if hook is None:
            return
        try:
            for state in states:
                pool = state.pool
                if pool.window is None:
                    low = hook.credits_low
                    if low is None or pool.limit - state.spent > low or (pool.id, pool.limit) in self._fired:
                        continue
                else:
                    level = hook.reached(state.spent, pool.limit)
                    if not level or (pool.id, state.window_start, level) in self._fired:
                        continue
                self._note(ctx.account.id, pool, state.window_start, state, False)
        except Exception:  # an alert must never fail a request
            log.exception("alerts: noting a settlement failed")

    def exhausted(self, ctx: KeyContext, refusal: BudgetExhausted) -> None:
        """A request was refused because `refusal.pool` is spent: its window reached 100 %."""
        hook = self._hooks.get(ctx.account.id)
        if hook is None:
            return
        try:
            pool = refusal.pool
            if pool.window is None:
                if hook.credits_low is None or (pool.id, pool.limit) in self._fired:
                    return
                start = 0
            else:
                if not hook.thresholds:
                    return
                moment = refusal.resets_at - 1 if refusal.resets_at is not None else self.clock()
                start = window_start(moment, pool.window)
                if (pool.id, start, hook.thresholds[-1]) in self._fired:
                    return
            self._note(ctx.account.id, pool, start, None, True)
        except Exception:
            log.exception("alerts: noting a budget refusal failed")

    def _note(self, account_id: str, pool: Pool, start: int, state: PoolState | None, exhausted: bool) -> None:
        slot = (pool.id, start)
        noted = self._noted.get(slot)
        if noted is None:
            if len(self._noted) >= MAX_PENDING_POOLS:
                self.dropped += 1
                return
            self._noted[slot] = _Noted(account_id, pool, start, state, exhausted)
        else:
            if state is not None:
                noted.state = state
            noted.exhausted = noted.exhausted or exhausted
        self._detect.set()

    # -- detection (background) -----------------------------------------------

    async def _detect_forever(self) -> None:
        while True:
            await self._detect.wait()
            self._detect.clear()
            try:
                await self._store_noted()
            except Exception:
                log.exception("alerts: storing detected events failed; trying again")
                await asyncio.sleep(1.0)
                self._detect.set()

    async def _store_noted(self) -> None:
        """Events for every pool noted since the last call, into the outbox."""
        if not self._noted:
            return
        noted, self._noted = self._noted, {}
        found: list[AlertEvent] = []
        marks: list[tuple] = []
        try:
            now = self.clock()
            for item in noted.values():
                hook = self._hooks.get(item.account_id)
                if hook is not None:
                    await self._events_of(item, hook, now, found, marks)
            await self._enqueue(found, marks)
        except BaseException:
            for slot, item in noted.items():  # looked at again next time (only new ids are stored)
                self._noted.setdefault(slot, item)
            raise

    async def _events_of(self, item: _Noted, hook: Webhook, now: float, found: list[AlertEvent],
                         marks: list[tuple]) -> None:
        pool, state = item.pool, item.state
        if state is None:
            state = await self.ledger.read(pool)
            if state.window_start != item.window_start:
                return  # that window is over
        if pool.window is None:
            low = hook.credits_low
            if low is not None and (item.exhausted or pool.limit - state.spent <= low) and \
                    (pool.id, pool.limit) not in self._fired:
                found.append(events.credits_low(item.account_id, state, low, item.exhausted, now))
                marks.append((pool.id, pool.limit))
            return
        thresholds = hook.thresholds
        level = thresholds[-1] if item.exhausted and thresholds else hook.reached(state.spent, pool.limit)
        for threshold in thresholds:
            if threshold > level:
                break
            mark = (pool.id, item.window_start, threshold)
            if mark not in self._fired:
                found.append(events.budget_threshold(item.account_id, state, threshold, item.exhausted, now))
                marks.append(mark)

    async def _enqueue(self, found: list[AlertEvent], marks: list[tuple]) -> None:
        if found:
            added = await self.store.enqueue_alerts(found)
            if added:
                log.info("alerts: %d new event(s) in the outbox", len(added))
                self.deliverer.wake.set()
        if len(self._fired) + len(marks) > MAX_FIRED:
            self._fired.clear()  # forgotten ones cost one ignored insert if seen again
        self._fired.update(marks)

    # -- the sweep (background) -----------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("alerts: sweep failed")
            await asyncio.sleep(self.config.sweep_interval)

    async def _reload(self) -> None:
        version = self._hooks_version
        hooks = {h.account_id: h for h in await self.store.list_webhooks()}
        if version == self._hooks_version:  # else a change made here meanwhile would be undone
            self._hooks = hooks
            self._next_reload = self.clock() + RELOAD_EVERY

    async def sweep(self) -> None:
        """Announce subscriptions expiring within their notice, or just expired; now and then, reload the
        webhooks and forget old deliveries."""
        now = self.clock()
        if now >= self._next_reload:
            await self._reload()
        found: list[AlertEvent] = []
        marks: list[tuple] = []
        for sub in await self.store.subscriptions_near_end(now - events.EXPIRED_LOOKBACK, now):
            hook = self._hooks.get(sub.account_id)
            if hook is None:
                continue
            if sub.effective_status(now) == "expired":
                if sub.current_period_end < hook.created_at:
                    continue  # it ended before the webhook was set up
                mark, make = ("expired", sub.id, sub.current_period_end), events.subscription_expired
            elif sub.current_period_end - now <= hook.expiring_notice:
                mark, make = ("expiring", sub.id, sub.current_period_end), events.subscription_expiring
            else:
                continue
            if mark not in self._fired:
                found.append(make(sub, now))
                marks.append(mark)
        await self._enqueue(found, marks)
        if now >= self._next_prune:
            pruned = await self.store.prune_alerts(now - events.KEEP_FINISHED, now)
            self._next_prune = now + (PRUNE_EVERY if not pruned else 0.0)  # a batch gone: the next one next sweep

    # -- the management API's actions (scoped to the caller's account) ----------

    async def webhook(self, account_id: str) -> Webhook:
        hook = await self.store.get_webhook(account_id)
        if hook is None:
            raise NotFound("this account has no webhook; create one with PUT /api/webhook")
        return hook

    async def set_webhook(self, account_id: str, **changes) -> tuple[Webhook, str | None]:
        """Create or change the account's webhook (`settings.configure`: fields left out keep their value).
        Returns it, and its secret when one was made here (shown this once)."""
        old = await self.store.get_webhook(account_id)
        hook, made = configure(old, account_id, int(self.clock()), self.config.allow_private, **changes)
        await self.store.put_webhook(hook)
        self._hooks_version += 1
        self._hooks[account_id] = hook
        return hook, made

    async def delete_webhook(self, account_id: str) -> None:
        if not await self.store.delete_webhook(account_id, self.clock()):
            raise NotFound("this account has no webhook")
        self._hooks_version += 1
        self._hooks.pop(account_id, None)

    async def deliveries(self, account_id: str, limit: int) -> list[AlertDelivery]:
        await self.webhook(account_id)
        return await self.store.recent_alerts(account_id, limit)

    async def test(self, account_id: str) -> AlertEvent:
        """A `ping` event into the outbox, delivered like any other."""
        await self.webhook(account_id)
        if await self.store.pending_alerts(account_id) >= MAX_UNDELIVERED_FOR_TEST:
            raise Conflict(f"this account has {MAX_UNDELIVERED_FOR_TEST} or more deliveries pending; "
                           "see GET /api/webhook/deliveries")
        event = events.ping(account_id, self.clock())
        await self.store.enqueue_alerts([event])
        self.deliverer.wake.set()
        return event

