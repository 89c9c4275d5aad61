"""Hostile clients on raw sockets against the real gateway: every size and wait is bounded (issue 13).

Each test speaks bytes to a running gateway and checks what comes back (a 4xx
in time, or the connection closed), then that the gateway still answers a
probe and holds no reservation. The gateway runs with short deadlines so that
the tests do not wait long; every wait here is bounded by a socket timeout.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.conftest import fake_config

LIMITS = {"header_timeout": 0.6, "body_timeout": 0.6, "keepalive_timeout": 0.6, "write_timeout": 1.0,
          "max_url_bytes": 4096, "max_header_bytes": 16384, "max_headers": 40, "max_connections": 120}
WAIT = 10.0  # the longest any socket read here waits: a hang becomes a failure


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    from tests.support.processes import Gateway, start_upstream

    tmp = tmp_path_factory.mktemp("hostile")
    upstream = start_upstream(tmp, "fake")
    config = fake_config(upstream.url, limits=LIMITS)
    # A model whose answers can outgrow every socket buffer between the gateway and a client.
    config["models"].append({"id": "fake-long", "upstream": "fake", "input_per_mtok": "0.01", "output_per_mtok": "0.01",
                             "context": 400000, "max_output": 200000})
    config["plans"].append({"slug": "roomy", "window": "5h", "budget_per_window": "10", "rpm": 100000,
                            "tpm": 10**9})
    gw = Gateway(tmp, config)
    gw.start("/health")
    key = gw.key(plan="roomy", name="hostile")
    gw.sk, gw.mk = key["sk"], key["mk"]
    yield gw
    gw.stop()
    upstream.stop()


def connect(gw) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_all(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes the connection (bounded in time and size)."""
    data = b""
    deadline = time.monotonic() + WAIT
    while len(data) < limit and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _complete(response: bytes) -> bool:
    """Whether `response` holds a whole answer with a Content-Length body."""
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response[9:12])


def probe(gw) -> None:
    """The gateway still answers, and holds no reservation of an earlier request."""
    r = httpx.get(gw.url + "/v1/usage", headers={"authorization": "Bearer " + gw.sk}, timeout=WAIT)
    assert r.status_code == 200, r.text
    assert r.json()["budget"]["reserved"] == 0


def test_an_oversized_url_gets_414_before_it_is_buffered(hostile):
    sock = connect(hostile)
    sock.sendall(b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(read_all(sock)) == 414
    probe(hostile)


@pytest.mark.parametrize("head", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 5_000_000 + b"\r\n\r\n",  # one huge header
    b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(500)) + b"\r\n",  # too many
    b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %b\r\n" % (i, b"v" * 900) for i in range(30)) + b"\r\n",
], ids=["huge-header", "many-headers", "large-headers"])
def test_oversized_headers_get_431(hostile, head):
    sock = connect(hostile)
    try:
        sock.sendall(head)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the rest arrived: what it sent is still readable
    assert status_of(read_all(sock)) == 431
    probe(hostile)


@pytest.mark.parametrize(("sent", "expected"), [
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", 408),  # headers that never end (slowloris)
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\r\nContent-Length: 100\r\n\r\n"
     b"{\"model\":", 408),  # a body shorter than its length
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n5\r\nabcde\r\n", 408),  # a chunked body that never ends
], ids=["headers", "content-length", "chunked"])
def test_a_request_that_does_not_arrive_in_time_gets_408_and_is_closed(hostile, sent, expected):
    sock = connect(hostile)
    sock.sendall(sent.replace(b"{sk}", hostile.sk.encode()))
    response = read_all(sock)
    assert status_of(response) == expected
    probe(hostile)


def test_an_idle_keep_alive_connection_is_closed(hostile):
    sock = connect(hostile)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    deadline = time.monotonic() + WAIT
    while not _complete(first) and time.monotonic() < deadline:  # head and body may come in two writes
        chunk = sock.recv(65536)
        if not chunk:
            break
        first += chunk
    assert status_of(first) == 200 and _complete(first), first
    assert read_all(sock) == b""  # then nothing, and the server closes the idle connection
    probe(hostile)


def test_an_upgrade_request_is_answered_without_upgrading_and_the_connection_ends(hostile):
    sock = connect(hostile)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                 b"\x81\x85websocket frame bytes")
    response = read_all(sock)
    assert status_of(response) == 200 and response.count(b"HTTP/1.1 ") == 1, response[:300]
    probe(hostile)


@pytest.mark.parametrize("request_bytes", [
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\r\nTransfer-Encoding: chunked"
    b"\r\n\r\nzz\r\nabc\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello on the plain port
    b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
], ids=["bad-chunk-size", "two-lengths", "length-and-chunked", "tls-hello", "bad-version"])
def test_a_malformed_request_gets_a_400_not_a_dropped_connection(hostile, request_bytes):
    sock = connect(hostile)
    sock.sendall(request_bytes.replace(b"{sk}", hostile.sk.encode()))
    response = read_all(sock)
    assert response, "the connection was dropped without an answer"
    assert status_of(response) == 400, response[:300]
    probe(hostile)


def test_garbage_after_a_pipelined_request_is_answered_after_it(hostile):
    sock = connect(hostile)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    response = read_all(sock)
    statuses = [int(part[:3]) for part in response.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 200, 400], response[:500]
    probe(hostile)


@pytest.mark.parametrize(("path", "expected"), [
    ("/%61dmin/accounts", 404),  # an encoded letter is not decoded before routing
    ("/admin%2Faccounts", 400),  # an encoded slash is refused
    ("/admin%2faccounts", 400),
    ("/v1/../admin/accounts", 400),  # dot segments are refused
    ("/v1/%2e%2e/admin/accounts", 400),
    ("/./admin/accounts", 400),
    ("/admin%5Caccounts", 400),
])
def test_encoded_paths_never_reach_the_operator_routes(hostile, path, expected):
    sock = connect(hostile)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hostile.admin_token}\r\n"
                 "Connection: close\r\n\r\n".encode())
    response = read_all(sock)
    assert status_of(response) == expected, response[:300]
    probe(hostile)


def test_connections_beyond_the_cap_get_503_and_real_requests_work_again(hostile):
    held = []
    try:
        for _ in range(LIMITS["max_connections"] + 5):
            held.append(connect(hostile))
        extra = connect(hostile)
        assert status_of(read_all(extra)) == 503
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # the server notices the closed sockets
        try:
            probe(hostile)
            return
        except (httpx.HTTPError, AssertionError):
            time.sleep(0.1)
    probe(hostile)


def test_a_client_that_does_not_read_its_stream_is_cut_off_and_its_reservation_freed(hostile):
    sock = connect(hostile)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = (b'{"model": "fake-long", "stream": true, "max_tokens": 200000, "messages": '
            b'[{"role": "user", "content": "[[reply:200000]] go"}]}')
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + hostile.sk.encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\n\r\n" + body)
    # Read nothing: the server's writes back up, and after write_timeout it aborts the connection.
    deadline = time.monotonic() + WAIT
    reserved = None
    while time.monotonic() < deadline:
        r = httpx.get(hostile.url + "/v1/usage", headers={"authorization": "Bearer " + hostile.sk}, timeout=WAIT)
        reserved = r.json()["budget"]["reserved"]
        if reserved == 0:
            break
        time.sleep(0.2)
    assert reserved == 0, "the reservation of a stream nobody reads is still held"
    sock.close()
    assert "did not read its answer" in hostile.log.read_text()  # cut off by the write timeout, not finished
    probe(hostile)


def ledger_totals(gw) -> tuple[int, int]:
    """(what the key's budget says was spent, what its usage records add up to)."""
    budget = httpx.get(gw.url + "/v1/usage", headers={"authorization": "Bearer " + gw.sk}, timeout=WAIT).json()
    records = gw.manage("GET", "/api/usage", gw.mk).json()["data"]
    return budget["budget"]["spent_nanos"], records["total"]["spentNanos"]


def test_after_every_hostile_client_the_ledger_adds_up_and_the_gateway_restarts(hostile):
    """Runs last in this module: what all the tests above left behind."""
    spent, recorded = ledger_totals(hostile)
    assert spent == recorded and spent > 0  # the slow reader's stream was charged for what was sent
    probe(hostile)
    hostile.stop()
    hostile.start("/health")
    assert ledger_totals(hostile) == (spent, recorded)
    probe(hostile)
