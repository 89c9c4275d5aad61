"""Alert webhooks end to end: the real gateway process, a real HTTP receiver that checks signatures.

Budget thresholds crossed by real requests arrive once each, signed; a receiver that is down
(connection refused, then 500s) gets the event once it is back; a pending delivery survives a
gateway restart; subscriptions about to expire, and expired, are announced. The gateway runs
with small retry delays and a short sweep (`[alerts]`), and every wait has a deadline that turns
a hang into a failure; nothing here asserts how fast anything was.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tests.conftest import fake_config
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.processes import Gateway, free_port, start_upstream
from tollgate.alerts.post import DeliveryError, Poster, post

ALERTS = {"allow_private": True, "sweep_interval": 0.3, "retry_base": 0.2, "retry_max_delay": 0.5, "timeout": 2.0,
          "max_age": 300.0}
WAIT = 20.0  # the most any one wait may take before the test fails


def wait_until(check, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(0.05)


def alerts_config(upstream_url: str) -> dict:
    return {**fake_config(upstream_url), "alerts": ALERTS}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alerts")
    upstream = start_upstream(tmp)
    gateway = Gateway(tmp, alerts_config(upstream.url))
    gateway.start("/health")
    yield gateway
    gateway.stop()
    upstream.stop()


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.stop()


def deliveries(gw: Gateway, mk: str) -> list[dict]:
    r = gw.manage("GET", "/api/webhook/deliveries?limit=200", mk)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def delivery(gw: Gateway, mk: str, event_id: str) -> dict | None:
    return next((d for d in deliveries(gw, mk) if d["eventId"] == event_id), None)


def set_webhook(gw: Gateway, mk: str, url: str, **fields) -> str:
    r = gw.manage("PUT", "/api/webhook", mk, {"url": url, **fields})
    assert r.status_code == 201, r.text
    return r.json()["data"]["secret"]


def chat(gw: Gateway, sk: str, text: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "fake-chat", "messages": [{"role": "user", "content": text}]})


def test_budget_thresholds_arrive_once_each_and_signed(gw, receiver):
    key = gw.key(plan="tiny", name="thresholds")  # $0.001 per 5h window
    receiver.secret = set_webhook(gw, key["mk"], receiver.url)
    statuses = []
    for _ in range(12):  # spend until the window refuses
        statuses.append(chat(gw, key["sk"], "hello there [[reply:400]]").status_code)
        if statuses[-1] == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    for _ in range(3):  # more refusals and nothing new to say
        assert chat(gw, key["sk"], "hello [[reply:400]]").status_code == 429

    wait_until(lambda: len(receiver.events("budget.threshold")) >= 2, "both thresholds delivered")
    wait_until(lambda: sum(d["status"] == "delivered" for d in deliveries(gw, key["mk"])) >= 2, "deliveries recorded")
    # The outbox holds each event once (unique ids), and each was delivered at the first attempt.
    outbox = [d for d in deliveries(gw, key["mk"]) if d["type"] == "budget.threshold"]
    assert sorted(d["event"]["data"]["threshold"] for d in outbox) == [80, 100]
    assert all(d["status"] == "delivered" and d["attempts"] == 1 and d["lastStatus"] == 204 for d in outbox)
    got = receiver.events("budget.threshold")
    assert sorted(r.event["data"]["threshold"] for r in got) == [80, 100]
    assert {r.event["id"] for r in got} == {d["eventId"] for d in outbox}
    for r in got:
        assert r.signed, "the Tollgate-Signature did not verify"
        assert r.path == "/hooks/tollgate" and r.headers["content-type"] == "application/json"
        assert r.headers["tollgate-event-id"] == r.event["id"]
        assert r.headers["tollgate-event-type"] == "budget.threshold"
        data = r.event["data"]
        assert (r.event["accountId"], data["poolKind"], data["subscriptionId"]) == (
            key["account"], "subscription", key["subscription"])
        assert data["limitNanos"] == 1_000_000 and data["limit"] == "0.001" and data["window"] == "5h"
        assert data["resetsAt"].endswith("Z")
        if data["threshold"] == 80:
            assert data["spentNanos"] * 100 >= 80 * data["limitNanos"]
        else:
            assert data["exhausted"] or data["spentNanos"] >= data["limitNanos"]


def test_a_receiver_that_is_down_gets_the_event_once_it_is_back(gw):
    port = free_port()  # nobody listens here yet: connection refused
    _, mk = gw.account("down")
    secret = set_webhook(gw, mk, f"http://127.0.0.1:{port}/hooks/tollgate")
    r = gw.manage("POST", "/api/webhook/test", mk)
    assert r.status_code == 202, r.text
    event_id = r.json()["data"]["eventId"]
    failing = wait_until(lambda: (d := delivery(gw, mk, event_id)) and d["attempts"] >= 2 and d, "retries")
    assert failing["status"] == "pending" and "connect" in failing["lastError"] and failing["lastStatus"] is None

    receiver = WebhookReceiver(port, secret)
    try:
        wait_until(lambda: any(x.event["id"] == event_id for x in receiver.events()), "the event after the outage")
        [got] = [x for x in receiver.events() if x.event["id"] == event_id]
        assert got.signed and got.event["type"] == "ping" and int(got.headers["tollgate-delivery-attempt"]) >= 3
        done = wait_until(lambda: (d := delivery(gw, mk, event_id)) and d["status"] == "delivered" and d, "marked")
        assert done["lastStatus"] == 204 and done["attempts"] >= 3

        # Up, but failing: two 500s, then the event.
        receiver.fail_next = 2
        event_id = gw.manage("POST", "/api/webhook/test", mk).json()["data"]["eventId"]
        wait_until(lambda: any(x.event["id"] == event_id for x in receiver.events()), "the event after two 500s")
        done = wait_until(lambda: (d := delivery(gw, mk, event_id)) and d["status"] == "delivered" and d, "marked")
        assert done["attempts"] == 3 and receiver.fail_next == 0
    finally:
        receiver.stop()


def test_subscriptions_expiring_and_expired_are_announced(gw, receiver):
    account_id, mk = gw.account("expiry")
    receiver.secret = set_webhook(gw, mk, receiver.url)
    sub = gw.subscribe(account_id, "tiny", periodDays=1)  # inside the default 3-day notice
    wait_until(lambda: [x for x in receiver.events("subscription.expiring") if x.event["data"]["subscriptionId"] == sub],
               "subscription.expiring")
    r = gw.admin("POST", f"/admin/subscriptions/{sub}/expire")
    assert r.status_code == 200, r.text
    [expired] = wait_until(lambda: [x for x in receiver.events("subscription.expired")
                                    if x.event["data"]["subscriptionId"] == sub], "subscription.expired")
    assert expired.signed and expired.event["data"]["status"] == "expired" and expired.event["accountId"] == account_id
    [expiring] = [x for x in receiver.events("subscription.expiring") if x.event["data"]["subscriptionId"] == sub]
    assert expiring.signed and expiring.event["data"]["planSlug"] == "tiny"
    assert 0 < expiring.event["data"]["secondsLeft"] <= 86400
    # Each once in the outbox, however many sweeps saw them.
    kinds = sorted(d["type"] for d in deliveries(gw, mk))
    assert kinds == ["subscription.expired", "subscription.expiring"]


def test_the_management_api_is_scoped_checked_and_never_shows_the_secret_again(gw, receiver):
    _, mk = gw.account("settings")
    _, other = gw.account("other")
    r = gw.manage("GET", "/api/webhook", mk)
    assert r.status_code == 404 and r.json()["success"] is False and r.json()["error"]["code"] == "not_found"
    assert httpx.get(gw.url + "/api/webhook").status_code == 401
    for body, param in (({"url": "ftp://example.com/x"}, "url"), ({"url": receiver.url, "thresholds": [0]}, "thresholds"),
                        ({"url": receiver.url, "threshold": [80]}, "threshold"),
                        ({"url": receiver.url, "creditsLow": "-1"}, "creditsLow"),
                        ({"url": receiver.url, "expiringNotice": "3 days"}, "expiringNotice"),
                        ({"url": receiver.url, "secret": "short"}, "secret")):
        r = gw.manage("PUT", "/api/webhook", mk, body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (body, r.text)

    r = gw.manage("PUT", "/api/webhook", mk, {"url": receiver.url, "thresholds": [90, 50]})
    assert r.status_code == 201
    created = r.json()["data"]
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["secretPrefix"] == secret[:10] + "…"
    assert (created["thresholds"], created["creditsLow"], created["creditsLowNanos"]) == \
        ([50, 90], "1.00", 1_000_000_000)
    assert (created["expiringNotice"], created["expiringNoticeSeconds"]) == ("3d", 259200)
    shown = gw.manage("GET", "/api/webhook", mk)
    assert shown.status_code == 200 and secret not in shown.text and "secret" not in shown.json()["data"]
    r = gw.manage("PUT", "/api/webhook", mk, {"creditsLow": "0.50", "expiringNotice": "2d"})
    assert r.status_code == 200 and "secret" not in r.json()["data"]
    changed = r.json()["data"]
    assert (changed["url"], changed["creditsLow"], changed["creditsLowNanos"], changed["expiringNotice"]) == \
        (receiver.url, "0.50", 500_000_000, "2d")

    # Another account sees and touches none of it.
    assert gw.manage("GET", "/api/webhook", other).status_code == 404
    assert gw.manage("DELETE", "/api/webhook", other).status_code == 404
    assert gw.manage("GET", "/api/webhook/deliveries", other).status_code == 404
    assert gw.manage("POST", "/api/webhook/test", other).status_code == 404
    assert gw.manage("GET", "/api/webhook/deliveries?limit=0", mk).status_code == 400

    receiver.secret = secret
    event_id = gw.manage("POST", "/api/webhook/test", mk).json()["data"]["eventId"]
    wait_until(lambda: any(x.event["id"] == event_id and x.signed for x in receiver.events()), "the signed ping")
    r = gw.manage("DELETE", "/api/webhook", mk)
    assert r.status_code == 200 and r.json()["data"] == {"deleted": True}
    assert gw.manage("GET", "/api/webhook", mk).status_code == 404


def test_a_pending_delivery_survives_a_restart(gateway_factory, upstream_factory):
    config = alerts_config(upstream_factory().url)
    first = gateway_factory(config)
    port = free_port()
    _, mk = first.account("restart")
    secret = set_webhook(first, mk, f"http://127.0.0.1:{port}/hooks/tollgate")
    event_id = first.manage("POST", "/api/webhook/test", mk).json()["data"]["eventId"]
    wait_until(lambda: (d := delivery(first, mk, event_id)) and d["attempts"] >= 1, "a failed attempt")
    assert first.stop() == 0

    second = gateway_factory(config)  # the same database
    receiver = WebhookReceiver(port, secret)
    try:
        wait_until(lambda: any(x.event["id"] == event_id for x in receiver.events()), "the event after the restart")
        assert all(x.signed for x in receiver.events())
        wait_until(lambda: (d := delivery(second, mk, event_id)) and d["status"] == "delivered", "marked delivered")
    finally:
        receiver.stop()


def test_one_attempt_is_bounded_and_says_why_it_failed(receiver):
    async def attempt(url: str, timeout: float = 2.0) -> int:
        return await post(url, b'{"x":1}', [("Content-Type", "application/json")], timeout, allow_private=True)

    assert asyncio.run(attempt(receiver.url)) == 204
    with pytest.raises(DeliveryError, match="connect"):
        asyncio.run(attempt(f"http://127.0.0.1:{free_port()}/x"))
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        with pytest.raises(DeliveryError, match="no answer within"):
            asyncio.run(attempt(f"http://127.0.0.1:{silent.getsockname()[1]}/x", timeout=0.5))
    with pytest.raises(DeliveryError, match="public"):
        asyncio.run(post(receiver.url, b"{}", [], 2.0, allow_private=False))
    with pytest.raises(DeliveryError, match="TLS"):  # https to a server that speaks plain HTTP
        asyncio.run(Poster()(receiver.url.replace("http:", "https:"), b"{}", [], 2.0, True))
