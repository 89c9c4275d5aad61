"""The scaled configuration's failure policy through a running gateway (docs/deploy.md#failure-policy).

Redis stopped: every request is refused with a 503 in its API's shape and a short Retry-After,
never counted in a process of its own; Redis back: service resumes by itself, and the spend is one
number. PostgreSQL stopped: keys already seen keep working and no usage record is lost. An instance
killed mid-stream: its hold frees itself within `hold_seconds`. PostgreSQL without Redis: one process only, the embedded ledger, and a second gateway on the
same database stops at start with a message that says why.
"""

from __future__ import annotations

import subprocess
import threading
import time

import httpx

from tests.support.scaled import ScaledGateway, chat
from tests.support.services import PostgresServer


def anthropic(gw: ScaledGateway, sk: str) -> httpx.Response:
    return httpx.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": sk}, timeout=30,
                      json={"model": "fake-chat", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]})


def spent(gw: ScaledGateway, sk: str) -> int:
    return httpx.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {sk}"}, timeout=30).json()[
        "budget"]["spent_nanos"]


def test_redis_down_means_503_with_retry_after_and_service_resumes_when_it_returns(tmp_path, pg_url, redis_server,
                                                                                   upstream_factory):
    upstream = upstream_factory()
    gw = ScaledGateway(tmp_path, "a", upstream.url, pg_url, redis_server.url, workers=2)
    gw.start("/health", timeout=90)
    try:
        key = gw.key(plan="tiny")
        before = [chat(gw, key["sk"]) for _ in range(3)]
        assert {r.status_code for r in before} == {200}
        charged = sum(int(r.headers["x-request-cost-nanos"]) for r in before)

        redis_server.stop()
        for r in [chat(gw, key["sk"]) for _ in range(4)]:  # both workers: none counts on its own
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "ledger_unavailable"
            assert 1 <= int(r.headers["retry-after"]) <= 5
        r = anthropic(gw, key["sk"])
        assert r.status_code == 503 and r.json()["type"] == "error" and "retry-after" in r.headers

        redis_server.start()  # the same port, empty (no append-only file): counters rebuilt from PostgreSQL
        after = None
        for _ in range(40):  # bounded: the clients reconnect on their next command
            after = chat(gw, key["sk"])
            if after.status_code == 200:
                break
        assert after is not None and after.status_code == 200, after.text
        charged += int(after.headers["x-request-cost-nanos"])
        assert spent(gw, key["sk"]) == charged
    finally:
        assert gw.stop() == 0


def test_postgresql_without_redis_is_one_gateway_with_the_embedded_ledger(tmp_path, pg_url, upstream_factory):
    upstream = upstream_factory()
    first = ScaledGateway(tmp_path, "first", upstream.url, pg_url, None, workers=1)
    first.start("/health", timeout=90)
    try:
        key = first.key(plan="tiny")
        r = chat(first, key["sk"])
        assert r.status_code == 200
        assert spent(first, key["sk"]) == int(r.headers["x-request-cost-nanos"])

        second = ScaledGateway(tmp_path, "second", upstream.url, pg_url, None, workers=1)
        done = subprocess.run(second.args, env=second.env, capture_output=True, text=True, timeout=90)
        assert done.returncode == 1
        assert "another tollgate gateway is serving from" in done.stdout + done.stderr
        assert "postgresql://tollgate:***@" in done.stdout + done.stderr  # the URL, never its password
        assert chat(first, key["sk"]).status_code == 200  # the first one never noticed
    finally:
        assert first.stop() == 0


def test_postgresql_down_known_keys_keep_working_and_no_record_is_lost(tmp_path, postgres, redis_server,
                                                                       upstream_factory):
    own = PostgresServer()  # this test stops it: a cluster of its own
    clients: dict[int, httpx.Client] = {}
    gw = None
    try:
        own.init().start()
        upstream = upstream_factory()
        gw = ScaledGateway(tmp_path, "a", upstream.url, own.database(), redis_server.url, workers=2)
        gw.start("/health", timeout=90)
        key = gw.key(plan="tiny")
        body = {"model": "fake-chat", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
        auth = {"Authorization": f"Bearer {key['sk']}"}
        clients = gw.pinned_clients()
        charged, answered = 0, 0
        for client in clients.values():  # every worker has the key in its cache now
            r = client.post("/v1/chat/completions", json=body, headers=auth)
            assert r.status_code == 200, r.text
            charged, answered = charged + int(r.headers["x-request-cost-nanos"]), answered + 1

        own.stop("fast")  # down (a crash would also lose its last commits: the cluster runs synchronous_commit=off)
        for _ in range(3):
            for client in clients.values():
                r = client.post("/v1/chat/completions", json=body, headers=auth)
                assert r.status_code == 200, r.text  # from the key cache; the records wait in the journals
                charged, answered = charged + int(r.headers["x-request-cost-nanos"]), answered + 1
        unseen = gw.url + "/v1/chat/completions"  # a key no process has seen cannot be checked: 503, retry
        r = httpx.post(unseen, json=body, headers={"Authorization": "Bearer sk_never_seen_0123456789abcdef"},
                       timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable", r.text
        assert int(r.headers["retry-after"]) >= 1
        own.start()

        total: dict = {}
        for _ in range(100):  # bounded: each worker's journal is written in once PostgreSQL answers
            r = gw.manage("GET", "/api/usage", key["mk"])
            if r.status_code == 200:
                total = r.json()["data"]["total"]
                if total["requests"] == answered:
                    break
            time.sleep(0.1)
        assert (total.get("requests"), total.get("spentNanos")) == (answered, charged), (r.status_code, r.text[:500])
    finally:
        for client in clients.values():
            client.close()
        code = gw.stop() if gw is not None else 0
        own.remove()
        assert code == 0


def test_an_instance_killed_mid_stream_frees_its_holds_within_hold_seconds(tmp_path, pg_url, redis_server,
                                                                            upstream_factory):
    upstream = upstream_factory()
    holds = {"redis": {"hold_seconds": 2, "renew_every": 0.5}}
    a = ScaledGateway(tmp_path, "a", upstream.url, pg_url, redis_server.url, workers=2, sections=holds)
    b = ScaledGateway(tmp_path, "b", upstream.url, pg_url, redis_server.url, workers=2, sections=holds)
    a.start("/health", timeout=90)
    b.start("/health", timeout=90)
    try:
        key = a.key(plan="tiny")

        def usage() -> dict:
            return httpx.get(b.url + "/v1/usage", headers={"Authorization": f"Bearer {key['sk']}"},
                             timeout=30).json()["budget"]

        quiet = usage()
        assert quiet["remaining_nanos"] == quiet["limit_nanos"]
        # A long stream on a: its reservation stays held (renewed) while it runs.
        body = {"model": "fake-chat", "stream": True, "max_tokens": 200,
                "messages": [{"role": "user", "content": "tell me [[reply:200]] [[delay:0.2]]"}]}
        with httpx.stream("POST", a.url + "/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {key['sk']}"}) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            for _ in range(20):  # 4 s of tokens: twice hold_seconds, so renewal kept the hold
                next(lines)
            held = usage()
            assert held["remaining_nanos"] < held["limit_nanos"]  # b sees a's hold
            a.kill()  # SIGKILL of the whole instance, mid-stream: nothing renews its hold any more
        freed = held
        for _ in range(60):  # bounded: the hold's deadline is 2 s away at most
            freed = usage()
            if freed["remaining_nanos"] + freed["spent_nanos"] == freed["limit_nanos"]:
                break
            time.sleep(0.1)
        assert freed["remaining_nanos"] + freed["spent_nanos"] == freed["limit_nanos"]  # no hold left
        assert chat(b, key["sk"]).status_code == 200
    finally:
        a.kill()
        assert b.stop() == 0


def test_an_instance_killed_mid_load_loses_nothing_it_answered(tmp_path, postgres, pg_url, redis_server,
                                                              upstream_factory):
    """SIGKILL of one instance under load: the other keeps serving throughout; every request the killed one
    answered is in PostgreSQL once it is back (its journal slots replayed), with the cost it told the client."""
    upstream = upstream_factory()
    big = {"plans": [{"slug": "big", "name": "Big", "window": "1d", "budget_per_window": "1000", "rpm": 1000000,
                      "tpm": 1000000000}], "redis": {"hold_seconds": 2, "renew_every": 0.5}}
    a = ScaledGateway(tmp_path, "a", upstream.url, pg_url, redis_server.url, workers=2, sections=big)
    b = ScaledGateway(tmp_path, "b", upstream.url, pg_url, redis_server.url, workers=2, sections=big)
    a.start("/health", timeout=90)
    b.start("/health", timeout=90)
    answered: dict[str, int] = {}  # request id -> cost, of the 200s the killed instance sent
    b_codes: list[int] = []
    stop = threading.Event()
    killed = threading.Event()
    errors: list[BaseException] = []

    def load(gw: ScaledGateway, sk: str, into_answered: bool) -> None:
        try:
            send(gw, sk, into_answered)
        except BaseException as error:  # seen by the test, not lost in the thread
            errors.append(error)

    def send(gw: ScaledGateway, sk: str, into_answered: bool) -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(2000):  # bounded; stopped long before
                if stop.is_set():
                    return
                try:
                    r = client.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"},
                                    json={"model": "fake-chat", "max_tokens": 3,
                                          "messages": [{"role": "user", "content": "hi"}]})
                except httpx.HTTPError:
                    if into_answered and killed.is_set():
                        return  # the instance is gone: what it never answered was never confirmed
                    raise
                if into_answered:
                    if r.status_code == 200:
                        answered[r.headers["x-request-id"]] = int(r.headers["x-request-cost-nanos"])
                elif killed.is_set():
                    b_codes.append(r.status_code)

    try:
        key = a.key(plan="big")
        threads = [threading.Thread(target=load, args=(a, key["sk"], True)) for _ in range(6)]
        threads += [threading.Thread(target=load, args=(b, key["sk"], False)) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        killed.set()
        a.kill()  # SIGKILL of the supervisor and its workers, requests in flight
        time.sleep(1.0)  # b serves on meanwhile
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads) and not errors, errors
        assert len(answered) > 20 and b_codes and set(b_codes) == {200}

        a.start("/health", timeout=90)  # the same journal directory: its slots are replayed into PostgreSQL
        database = pg_url.rsplit("/", 1)[1]
        stored: dict[str, int] = {}
        for _ in range(100):  # bounded: the replay and the sweep run at start and every few seconds
            rows = postgres.sql("SELECT request_id, cost FROM usage_records", database).splitlines()
            stored = {rid: int(cost) for rid, cost in (row.split("|") for row in rows)}
            if answered.keys() <= stored.keys():
                break
            time.sleep(0.1)
        assert {rid: stored.get(rid) for rid in answered} == answered
    finally:
        stop.set()
        a.kill()
        assert b.stop() == 0
