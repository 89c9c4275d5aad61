"""The PostgreSQL store's alert webhooks and outbox behave as the embedded store's (issue 14, docs/alerts.md).

One story told to both stores, step by step, every answer compared: a webhook made and replaced
(its creation time kept), events enqueued twice (stored once), deliveries due in order and each handed
out once while its lease runs (the delivery loops of many processes share the outbox), attempts
recorded (a row no longer pending left as it is), subscriptions near their end found at a time with
a fraction of a second, the webhook removed (its pending deliveries given up on), finished rows pruned.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.scaled.test_postgres_reads_support import ACCOUNT, OTHER, both_stores
from tollgate.store.postgres import PostgresStore
from tollgate.domain.accounts import Account, Plan, Subscription
from tollgate.domain.alerts import AlertDelivery, AlertEvent, Webhook

NOW = 1_800_000_000.25
DAY = 86400


async def story(store: Any) -> list[Any]:
    """Every answer the store gives along the story, in order."""
    seen: list[Any] = []
    await store.upsert_plan(Plan("standard", "Standard", 20_000_000_000, 30, 5 * 3600, 140_000_000, 60, 3333))
    for n, account in enumerate((ACCOUNT, OTHER)):
        await store.create_account(Account(account, account, n))
        for m, end in enumerate((NOW - 2 * DAY, NOW - 0.5, NOW + 0.5, NOW + DAY, NOW + 30 * DAY)):
            await store.create_subscription(Subscription(f"sub_{account}_{m}", account, "standard", "active", 0, 0,
                                                         int(end)))
    await store.put_webhook(Webhook(ACCOUNT, "http://a.test/1", "whsec_1", (50, 80), None, 2 * DAY, 10, 10))
    await store.put_webhook(Webhook(ACCOUNT, "http://a.test/2", "whsec_2", (90,), 5_000, DAY, 20, 20))
    await store.put_webhook(Webhook(OTHER, "http://b.test", "whsec_3", (100,), None, 60, 30, 30))
    seen += [await store.get_webhook(ACCOUNT), await store.get_webhook("acct_none"), await store.list_webhooks()]
    events = [AlertEvent(f"evt_{n}", (ACCOUNT, OTHER)[n % 2], "budget.threshold", b"{\"n\": %d}\x00" % n,
                         NOW - 100 + n, None if n % 3 else NOW + DAY) for n in range(6)]
    seen.append(await store.enqueue_alerts(events[:4]))
    seen.append(await store.enqueue_alerts(events))  # the first four are stored already
    due = await store.due_alerts(NOW - 97, 10)  # each claimed for a lease as it is handed out ...
    seen += [due, await store.due_alerts(NOW - 97, 10)]  # ... so not handed out again while it runs
    await store.record_alert_attempt(due[0].id, 1, None, NOW, None, 200, None)  # delivered
    await store.record_alert_attempt(due[1].id, 1, NOW + 30.5, None, None, 503, "busy")  # retried later
    await store.record_alert_attempt(due[2].id, 5, None, None, NOW, None, "gave up")
    await store.record_alert_attempt(due[0].id, 9, NOW, None, None, 500, "too late")  # not pending: unchanged
    seen += [await store.due_alerts(NOW + 31, 10), await store.recent_alerts(ACCOUNT, 10),
             await store.recent_alerts(OTHER, 2), await store.pending_alerts(ACCOUNT), await store.pending_alerts(OTHER)]
    seen += [await store.subscriptions_near_end(NOW - DAY, NOW), await store.subscriptions_near_end(NOW - 0.75, NOW)]
    seen += [await store.delete_webhook(ACCOUNT, NOW + 1), await store.delete_webhook(ACCOUNT, NOW + 2)]
    seen += [await store.pending_alerts(ACCOUNT), await store.recent_alerts(ACCOUNT, 10),
             await store.get_webhook(ACCOUNT), await store.list_webhooks()]
    seen += [await store.prune_alerts(NOW + 10, NOW + 5), await store.recent_alerts(ACCOUNT, 10),
             await store.prune_alerts(NOW + 10, NOW + 2 * DAY), await store.recent_alerts(OTHER, 10)]
    return seen


def without_ids(answer: Any) -> Any:
    """Deliveries without their row ids: PostgreSQL's identity takes a number for an event it then finds stored
    (ON CONFLICT DO NOTHING), so its ids have gaps where SQLite's have none; both are in the order enqueued."""
    if isinstance(answer, list):
        return [replace(d, id=0) if isinstance(d, AlertDelivery) else d for d in answer]
    return answer


def test_the_alert_story_is_the_same_on_both_stores(postgres):
    async def main(folder: Path) -> tuple[list, list]:
        async with both_stores(postgres, folder) as (sqlite, scaled):
            return await story(sqlite), await story(scaled)

    with tempfile.TemporaryDirectory() as folder:
        embedded, got = asyncio.run(main(Path(folder)))
    for step, (mine, theirs) in enumerate(zip(got, embedded, strict=True)):
        assert without_ids(mine) == without_ids(theirs), step
    # Known answers, so that a mistake both made alike could not pass.
    webhook, none, listed, first, second = got[:5]
    assert webhook.url == "http://a.test/2" and webhook.created_at == 10 and webhook.updated_at == 20
    assert webhook.thresholds == (90,) and webhook.credits_low == 5_000 and none is None and len(listed) == 2
    assert first == ["evt_0", "evt_1", "evt_2", "evt_3"] and second == ["evt_4", "evt_5"]
    assert [d.event_id for d in got[5]] == ["evt_0", "evt_1", "evt_2", "evt_3"]
    assert got[5][0].body == b"{\"n\": 0}\x00"
    assert got[6] == []  # all four claimed by the first call
    assert [d.event_id for d in got[7]] == ["evt_1", "evt_4", "evt_5"]  # the retry; evt_3's lease still runs
    recent = {d.event_id: d for d in got[8]}
    assert recent["evt_0"].delivered_at == NOW and recent["evt_0"].attempts == 1  # the late attempt changed nothing
    assert got[10:12] == [1, 3]  # the account's evt_4; the other's evt_1 (retried), evt_3, evt_5
    assert [s.id for s in got[12]] == [f"sub_{a}_{m}" for m, a in ((1, ACCOUNT), (1, OTHER), (2, ACCOUNT),
                                                                     (2, OTHER), (3, ACCOUNT))]
    assert [s.id for s in got[13]] == [f"sub_{a}_{m}" for m, a in ((2, ACCOUNT), (2, OTHER), (3, ACCOUNT))]
    assert got[14:17] == [True, False, 0]
    assert all(d.next_attempt_at is None for d in got[17]) and got[18] is None and len(got[19]) == 1
    assert [got[20], [d.event_id for d in got[21]], got[22], len(got[23])] == [2, ["evt_0"], 1, 3]


def test_two_processes_never_hand_out_the_same_delivery(pg_url):
    """Two stores on one database (two gateway processes), each delivery loop asking for what is due at once:
    every event is handed out exactly once between them, and none twice while its lease runs."""

    async def main(folder: Path) -> tuple[list[str], list[str]]:
        one = PostgresStore(pg_url, journal_dir=folder / "one", pool_max=4)
        two = PostgresStore(pg_url, journal_dir=folder / "two", pool_max=4)
        await one.open()
        await two.open()
        try:
            await one.create_account(Account(ACCOUNT, ACCOUNT, 0))
            await one.put_webhook(Webhook(ACCOUNT, "http://a.test/1", "whsec_1", (50,), None, DAY, 10, 10))
            await one.enqueue_alerts([AlertEvent(f"evt_{n}", ACCOUNT, "budget.threshold", b"{}", NOW - 60 + n, None)
                                      for n in range(60)])
            got: tuple[list[str], list[str]] = ([], [])
            for _ in range(20):  # bounded: 60 events, up to 2 x 7 a round
                answers = await asyncio.gather(*(store.due_alerts(NOW, 7) for store in (one, two, one, two)))
                for n, answer in enumerate(answers):
                    got[n % 2].extend(d.event_id for d in answer)
                if not any(answers):
                    break
            return got
        finally:
            await one.close()
            await two.close()

    with tempfile.TemporaryDirectory() as folder:
        first, second = asyncio.run(main(Path(folder)))
    everything = first + second
    assert sorted(everything) == sorted(f"evt_{n}" for n in range(60))  # each exactly once
    assert first and second  # both loops got a share
