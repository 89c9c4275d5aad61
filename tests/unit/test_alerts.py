"""Alert webhooks without a network: signatures, the retry schedule, URL checks, and detection, dedup
and delivery against a real SQLite store with a fake sender and a fake clock (docs/alerts.md)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import orjson
import pytest

from tollgate.alerts import events
from tollgate.alerts.backoff import next_attempt, retry_delay
from tollgate.alerts.destinations import BadDestination, check_address, check_url
from tollgate.alerts.post import DeliveryError
from tollgate.alerts.service import Alerts
from tollgate.alerts.signing import signature, verify
from tollgate.config.schema import AlertsConfig
from tollgate.domain.accounts import Account, ApiKey, KeyContext, Plan, Subscription
from tollgate.domain.alerts import AlertEvent, Webhook
from tollgate.domain.pools import Pool, PoolState
from tollgate.domain.refusals import BudgetExhausted, Invalid
from tollgate.domain.windows import window_end, window_start
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.embedded import EmbeddedLedger
from tollgate.ledger.writer import LedgerWriter
from tollgate.store.sqlite import SQLiteStore

NOW = 1_764_000_000.0  # 2025-11-24T16:00:00Z
WINDOW = 5 * 3600
LIMIT = 1_000_000


# -- signing ------------------------------------------------------------------

def test_the_signature_is_an_hmac_of_the_timestamp_a_dot_and_the_body():
    body = b'{"id":"evt_1","type":"ping"}'
    header = signature("whsec_test", 1_764_000_000, body)
    expected = hmac.new(b"whsec_test", b"1764000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1764000000,v1={expected}"
    assert verify("whsec_test", header, body, now=1_764_000_010)


def test_a_signature_fails_for_another_body_secret_or_an_old_timestamp():
    body = b'{"a":1}'
    header = signature("s" * 20, 1000, body)
    assert not verify("s" * 20, header, b'{"a":2}', now=1000)
    assert not verify("t" * 20, header, body, now=1000)
    assert not verify("s" * 20, header, body, now=1000 + 301)
    assert not verify("s" * 20, "v1=abc", body, now=1000)
    assert not verify("s" * 20, "t=x,v1=abc", body, now=1000)


# -- the retry schedule --------------------------------------------------------

def test_retries_double_up_to_the_cap_with_jitter_between_half_and_all():
    low = [retry_delay(n, 10, 3600, rand=lambda: 0.0) for n in range(1, 11)]
    high = [retry_delay(n, 10, 3600, rand=lambda: 1.0) for n in range(1, 11)]
    assert high == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]
    assert low == [h / 2 for h in high]
    mid = retry_delay(3, 10, 3600, rand=lambda: 0.5)
    assert 20 < mid < 40
    assert retry_delay(10_000, 10, 3600, rand=lambda: 1.0) == 3600  # no overflow, however many failures


def test_an_event_is_given_up_on_when_its_next_try_would_pass_its_max_age():
    created = 1000.0
    assert next_attempt(created + 5, created, 1, 10, 60, 100, rand=lambda: 1.0) == created + 15
    assert next_attempt(created + 95, created, 4, 10, 60, 100, rand=lambda: 1.0) is None


def test_the_whole_schedule_fits_the_max_age():
    """Every failure, one after another as the schedule says: tries until a day has passed, then gives up."""
    created = now = 0.0
    failures = 0
    while True:
        failures += 1
        at = next_attempt(now, created, failures, 10, 3600, 86400, rand=lambda: 0.75)
        if at is None:
            break
        assert at - now <= 3600
        now = at
    assert 86400 - 3600 <= now <= 86400
    assert 25 <= failures <= 40


# -- destinations --------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://hooks.example.com/tollgate", "http://8.8.8.8:8080/x?y=1",
                                 "https://[2001:4860::1]/hook"])
def test_public_http_urls_are_taken(url):
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize("url,why", [
    ("ftp://example.com/x", "http"), ("example.com/x", "http"), ("https:///x", "host"),
    ("https://user:pw@example.com/", "credentials"), ("https://example.com/#x", "fragment"),
    ("https://example.com:99999/", "port"), ("https://example.com/" + "a" * 3000, "2048"),
    ("https://exa mple.com/", "spaces"), (12, "http"),
])
def test_malformed_urls_are_refused(url, why):
    with pytest.raises(BadDestination, match=why):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/", "http://[::1]/",
                                 "http://169.254.169.254/latest/meta-data", "http://192.168.1.1/", "http://100.64.0.1/",
                                 "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/"])
def test_private_destinations_are_refused_unless_the_operator_allows_them(url):
    with pytest.raises(BadDestination, match="public"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


def test_a_resolved_address_is_checked_too():
    check_address("93.184.216.34")
    for private in ("127.0.0.1", "10.0.0.1", "fe80::1%eth0", "::1", "224.0.0.1"):
        with pytest.raises(BadDestination):
            check_address(private)


# -- thresholds -------------------------------------------------------------------

def hook(account_id: str = "acct_a", thresholds=(80, 100), credits_low: int | None = 500, url: str = "http://h/x",
         created_at: int = int(NOW) - 100) -> Webhook:
    return Webhook(account_id, url, "whsec_secret", thresholds, credits_low, 3 * 86400, created_at, created_at)


def test_the_highest_threshold_reached():
    h = hook(thresholds=(50, 80, 100))
    assert [h.reached(spent, 1000) for spent in (0, 499, 500, 799, 800, 999, 1000)] == [0, 0, 50, 50, 80, 80, 100]
    assert hook(thresholds=()).reached(1000, 1000) == 0
    assert h.reached(5, 0) == 0


# -- detection, dedup and delivery on a real store ------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Sender:
    """Answers each POST with the next of `answers` (an int status, or an exception), then 200."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, bytes, dict]] = []

    async def __call__(self, url, body, headers, timeout, allow_private):
        self.sent.append((url, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


CONFIG = AlertsConfig(retry_base=10, retry_max_delay=100, max_age=1000, allow_private=True)
PLAN = Plan("p", "P", 0, 30, WINDOW, LIMIT, 60, 1000)


def usage_record() -> UsageRecord:
    return UsageRecord("r", NOW, "acct_a", "key_1", "sub_1", "m", None, None, "chat", 200, 1, 1, 0, 1.0, False,
                       False)


def context(account_id: str = "acct_a") -> KeyContext:
    sub = Subscription("sub_1", account_id, "p", "active", int(NOW), int(NOW), int(NOW) + 30 * 86400)
    key = ApiKey("key_1", account_id, "subscription", "k", "sk_x", int(NOW), subscription_id="sub_1")
    return KeyContext(key, Account(account_id, "A", int(NOW)), sub, PLAN)


def sub_state(spent: int) -> PoolState:
    pool = Pool("sub:sub_1", "subscription", LIMIT, WINDOW)
    start = window_start(NOW, WINDOW)
    return PoolState(pool, start, window_end(start, WINDOW), spent, 0)


async def open_alerts(tmp_path, sender: Sender, clock: Clock, config: AlertsConfig = CONFIG) -> Alerts:
    """Alerts on a real store and a real embedded ledger; only the network (the sender) is played."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    await store.open()
    await store.upsert_plan(PLAN)
    await store.create_account(Account("acct_a", "A", int(NOW)))
    ledger = EmbeddedLedger(store, LedgerWriter(store), reservation_ttl=60, admission_wait=0, clock=clock)
    await ledger.start()
    return Alerts(store, ledger, config, clock, rand=lambda: 1.0, sender=sender)


async def close(alerts: Alerts) -> None:
    await alerts.ledger.close()
    await alerts.store.close()


async def deliver(alerts: Alerts) -> None:
    """One pass of the sender, waited for to the end."""
    await alerts.deliverer.send_due()
    await asyncio.gather(*list(alerts.deliverer.inflight.values()))


async def bodies(alerts: Alerts, account_id: str = "acct_a") -> list[dict]:
    return [orjson.loads(d.body) for d in reversed(await alerts.store.recent_alerts(account_id, 100))]


def test_a_threshold_is_stored_once_and_its_delivery_is_signed(tmp_path):
    async def main():
        clock, sender = Clock(), Sender()
        alerts = await open_alerts(tmp_path, sender, clock)
        try:
            _, secret = await alerts.set_webhook("acct_a", url="http://127.0.0.1:9/hook")
            ctx = context()
            alerts.settled(ctx, (sub_state(700_000),))  # 70 %: nothing
            assert not alerts._noted
            alerts.settled(ctx, (sub_state(810_000),))
            alerts.settled(ctx, (sub_state(820_000),))  # the same slot, noted once
            assert len(alerts._noted) == 1
            await alerts._store_noted()
            alerts.settled(ctx, (sub_state(830_000),))  # known now: not even noted
            assert not alerts._noted
            alerts._fired.clear()  # forgotten (a restart): detected again, stored once all the same
            alerts.settled(ctx, (sub_state(840_000),))
            await alerts._store_noted()
            [event] = await bodies(alerts)
            assert event["type"] == "budget.threshold" and event["accountId"] == "acct_a"
            data = event["data"]
            assert (data["threshold"], data["percent"], data["exhausted"]) == (80, 82, False)  # the latest state noted
            assert (data["poolKind"], data["subscriptionId"], data["window"]) == ("subscription", "sub_1", "5h")
            assert (data["spent"], data["spentNanos"], data["limit"], data["limitNanos"]) == (
                "0.00082", 820_000, "0.001", LIMIT)
            assert data["resetsAt"].endswith("Z") and data["windowStart"].endswith("Z")

            await deliver(alerts)
            [(url, body, headers)] = sender.sent
            assert url == "http://127.0.0.1:9/hook"
            assert headers["Tollgate-Event-Id"] == event["id"] and headers["Tollgate-Event-Type"] == "budget.threshold"
            assert verify(secret, headers["Tollgate-Signature"], body, now=clock.now)
            [row] = await alerts.store.recent_alerts("acct_a", 10)
            assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)
            await deliver(alerts)
            assert len(sender.sent) == 1  # delivered: never sent again
        finally:
            await close(alerts)

    asyncio.run(main())


def test_one_jump_fires_every_threshold_it_crosses_and_a_refusal_fires_100(tmp_path):
    async def main():
        clock = Clock()
        alerts = await open_alerts(tmp_path, Sender(), clock)
        try:
            await alerts.set_webhook("acct_a", url="http://h/x", thresholds=[50, 80, 100])
            ctx = context()
            alerts.settled(ctx, (sub_state(850_000),))
            await alerts._store_noted()
            assert [e["data"]["threshold"] for e in await bodies(alerts)] == [50, 80]
            # The window's last few nano-dollars cannot pay for a request: it is spent, whatever the percent.
            pool = sub_state(0).pool
            ledger = alerts.ledger
            await ledger.settle(await ledger.reserve([pool], 997_000, 997_000), 997_000, usage_record())
            with pytest.raises(BudgetExhausted) as refused:
                await ledger.reserve([pool], 10_000, 5_000)
            refusal = refused.value
            alerts.exhausted(ctx, refusal)
            await alerts._store_noted()
            alerts.exhausted(ctx, refusal)  # known: nothing more
            assert not alerts._noted
            found = await bodies(alerts)
            assert [e["data"]["threshold"] for e in found] == [50, 80, 100]
            assert (found[2]["data"]["exhausted"], found[2]["data"]["percent"]) == (True, 99)
        finally:
            await close(alerts)

    asyncio.run(main())


def test_credits_low_once_per_amount_granted(tmp_path):
    async def main():
        alerts = await open_alerts(tmp_path, Sender(), Clock())
        try:
            await alerts.set_webhook("acct_a", url="http://h/x", credits_low=500)
            ctx = context()
            credits = Pool("credit:acct_a", "credits", 10_000, None)
            alerts.settled(ctx, (PoolState(credits, 0, None, 9_000, 0),))  # 1,000 left: not low
            assert not alerts._noted
            alerts.settled(ctx, (PoolState(credits, 0, None, 9_600, 0),))
            await alerts._store_noted()
            alerts.settled(ctx, (PoolState(credits, 0, None, 9_900, 0),))
            await alerts._store_noted()
            topped = Pool("credit:acct_a", "credits", 20_000, None)  # a new grant re-arms it
            alerts.settled(ctx, (PoolState(topped, 0, None, 19_800, 0),))
            await alerts._store_noted()
            found = await bodies(alerts)
            assert [(e["type"], e["data"]["balanceNanos"], e["data"]["grantedNanos"]) for e in found] == [
                ("credits.low", 400, 10_000), ("credits.low", 200, 20_000)]
            await alerts.set_webhook("acct_a", credits_low=None)  # off
            alerts.settled(ctx, (PoolState(Pool("credit:acct_a", "credits", 30_000, None), 0, None, 29_999, 0),))
            assert not alerts._noted
        finally:
            await close(alerts)

    asyncio.run(main())


def test_failed_deliveries_back_off_then_arrive_or_are_given_up(tmp_path):
    async def main():
        clock = Clock()
        sender = Sender(DeliveryError("could not connect: refused"), 500, 200)
        alerts = await open_alerts(tmp_path, sender, clock)
        try:
            await alerts.set_webhook("acct_a", url="http://h/x")
            event = await alerts.test("acct_a")
            await deliver(alerts)
            [row] = await alerts.store.recent_alerts("acct_a", 10)
            assert (row.status, row.attempts, row.last_error) == ("pending", 1, "could not connect: refused")
            assert row.next_attempt_at == clock.now + 10
            await deliver(alerts)
            assert len(sender.sent) == 1  # not due yet
            clock.now += 10
            await deliver(alerts)
            [row] = await alerts.store.recent_alerts("acct_a", 10)
            assert (row.attempts, row.last_status, row.next_attempt_at) == (2, 500, clock.now + 20)
            clock.now += 20
            await deliver(alerts)
            [row] = await alerts.store.recent_alerts("acct_a", 10)
            assert (row.status, row.attempts, row.last_status) == ("delivered", 3, 200)
            assert [s[2]["Tollgate-Delivery-Attempt"] for s in sender.sent] == ["1", "2", "3"]
            assert {s[2]["Tollgate-Event-Id"] for s in sender.sent} == {event.event_id}

            # A receiver that never answers well: tried until max_age, then "failed".
            sender.answers = [503] * 100
            await alerts.test("acct_a")
            for _ in range(30):
                await deliver(alerts)
                clock.now += 100
            latest = (await alerts.store.recent_alerts("acct_a", 1))[0]
            assert latest.status == "failed" and latest.last_status == 503
            assert 5 <= latest.attempts <= 15 and latest.failed_at - latest.created_at <= 1000
        finally:
            await close(alerts)

    asyncio.run(main())


def test_subscriptions_expiring_and_expired_are_announced_once(tmp_path):
    async def main():
        clock = Clock()
        alerts = await open_alerts(tmp_path, Sender(), clock)
        store = alerts.store
        try:
            await store.create_subscription(Subscription("sub_old", "acct_a", "p", "expired", int(NOW) - 9000,
                                                         int(NOW) - 9000, int(NOW) - 3000))
            await alerts.set_webhook("acct_a", url="http://h/x")
            await store.create_subscription(Subscription("sub_soon", "acct_a", "p", "active", int(NOW), int(NOW),
                                                          int(NOW) + 86400))
            await store.create_subscription(Subscription("sub_later", "acct_a", "p", "active", int(NOW), int(NOW),
                                                         int(NOW) + 10 * 86400))
            await alerts.sweep()
            await alerts.sweep()
            found = await bodies(alerts)
            # sub_old ended before the webhook existed; sub_later is outside the 3-day notice.
            assert [(e["type"], e["data"]["subscriptionId"]) for e in found] == [("subscription.expiring", "sub_soon")]
            assert found[0]["data"]["secondsLeft"] == 86400
            clock.now += 86400 + 1
            await alerts.sweep()
            found = await bodies(alerts)
            assert [(e["type"], e["data"]["subscriptionId"]) for e in found] == [
                ("subscription.expiring", "sub_soon"), ("subscription.expired", "sub_soon")]
        finally:
            await close(alerts)

    asyncio.run(main())


def test_webhook_settings_are_checked_and_a_removed_webhook_stops_its_deliveries(tmp_path):
    async def main():
        alerts = await open_alerts(tmp_path, Sender(), Clock(), config=AlertsConfig())  # allow_private = false
        try:
            with pytest.raises(Invalid, match="public"):
                await alerts.set_webhook("acct_a", url="http://127.0.0.1:8080/x")
            with pytest.raises(Invalid, match="url is required"):
                await alerts.set_webhook("acct_a")
            hook, secret = await alerts.set_webhook("acct_a", url="https://hooks.example.com/x")
            assert secret.startswith("whsec_") and hook.secret == secret
            assert (hook.thresholds, hook.credits_low, hook.expiring_notice) == ((80, 100), 1_000_000_000, 3 * 86400)
            hook2, made = await alerts.set_webhook("acct_a", thresholds=[100, 90, 90])
            assert made is None and hook2.secret == secret and hook2.thresholds == (90, 100)
            hook3, made = await alerts.set_webhook("acct_a", secret="my-own-secret-1234")
            assert made is None and hook3.secret == "my-own-secret-1234"
            _, made = await alerts.set_webhook("acct_a", rotate_secret=True)
            assert made.startswith("whsec_") and made != secret
            for bad in ({"thresholds": [0]}, {"thresholds": [101]}, {"thresholds": "80"}, {"secret": "short"},
                        {"credits_low": -1}, {"expiring_notice": 31 * 86400}):
                with pytest.raises(Invalid):
                    await alerts.set_webhook("acct_a", **bad)
            await alerts.test("acct_a")
            await alerts.delete_webhook("acct_a")
            [row] = await alerts.store.recent_alerts("acct_a", 10)
            assert row.status == "failed" and row.last_error == "the webhook was removed"
            assert "acct_a" not in alerts._hooks
        finally:
            await close(alerts)

    asyncio.run(main())


def test_event_ids_are_stable_and_distinct():
    assert events.event_id("a") == events.event_id("a") != events.event_id("b")
    assert events.event_id("a").startswith("evt_") and len(events.event_id("a")) == 36


def test_finished_deliveries_are_forgotten_once_their_event_cannot_recur(tmp_path):
    async def main():
        clock = Clock()
        alerts = await open_alerts(tmp_path, Sender(), clock)
        store = alerts.store
        try:
            await alerts.set_webhook("acct_a", url="http://h/x")
            old = NOW - 8 * 86400
            body = b"{}"
            await store.enqueue_alerts([
                AlertEvent("evt_done", "acct_a", "ping", body, old, old),  # delivered, recurs no more
                AlertEvent("evt_window", "acct_a", "budget.threshold", body, old, NOW + 60),  # window open
                AlertEvent("evt_credits", "acct_a", "credits.low", body, old, None),  # kept with the webhook
                AlertEvent("evt_pending", "acct_a", "ping", body, old, old),  # never delivered yet
                AlertEvent("evt_new", "acct_a", "ping", body, NOW - 60, NOW - 60),  # delivered lately
            ])
            for d in await store.recent_alerts("acct_a", 10):
                if d.event_id != "evt_pending":
                    await store.record_alert_attempt(d.id, 1, None, d.created_at + 1, None, 204, None)
            assert await store.prune_alerts(NOW - events.KEEP_FINISHED, NOW) == 1
            left = {d.event_id for d in await store.recent_alerts("acct_a", 10)}
            assert left == {"evt_window", "evt_credits", "evt_pending", "evt_new"}
            assert await store.enqueue_alerts([AlertEvent("evt_window", "acct_a", "x", body, NOW, None)]) == []
        finally:
            await close(alerts)

    asyncio.run(main())


def test_the_alerts_config_table(tmp_path):
    from tollgate.config.load import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text("[alerts]\nenabled = false\nsweep_interval = 5\nretry_base = 0.5\nallow_private = true\n")
    config = load_config(path, env={})
    assert (config.alerts.enabled, config.alerts.sweep_interval, config.alerts.retry_base) == (False, 5.0, 0.5)
    assert config.alerts.allow_private and config.alerts.max_age == 86400
    assert load_config(None, env={}).alerts == AlertsConfig() and not AlertsConfig().allow_private
    for text, where in (("[alerts]\nretries = 3\n", "alerts.retries"),
                        ("[alerts]\nretry_base = 60\nretry_max_delay = 10\n", "alerts.retry_max_delay"),
                        ("[alerts]\nmax_concurrency = 0\n", "alerts.max_concurrency")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=where):
            load_config(path, env={})
