"""The gateway's HTTP/1.1 (uvicorn with the limits of `[server.limits]`), spoken to over raw sockets:
keep-alive, pipelining, chunked bodies, 100-continue, HEAD, malformed requests; a stream through it."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx

from tests.conftest import fake_config


def connect(gw) -> socket.socket:
    parts = urlsplit(gw.url)
    s = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return s


def read_response(s: socket.socket, buffer: bytearray) -> tuple[int, dict, bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = s.recv(65536)
        assert chunk, "connection closed before a response head"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    body = bytearray(rest)
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            body += s.recv(65536)
        buffer[:] = body[n:]
        return status, headers, bytes(body[:n])
    assert headers.get("transfer-encoding") == "chunked", headers
    out = bytearray()
    while True:
        while b"\r\n" not in body:
            body += s.recv(65536)
        size_line, _, body = bytes(body).partition(b"\r\n")
        body = bytearray(body)
        size = int(size_line, 16)
        while len(body) < size + 2:
            body += s.recv(65536)
        out += body[:size]
        body = body[size + 2:]
        if size == 0:
            buffer[:] = body
            return status, headers, bytes(out)


def test_keep_alive_and_pipelined_requests_are_answered_in_order(gateway):
    key = gateway.key()
    s = connect(gateway)
    buffer = bytearray()
    one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    two = f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key['sk']}\r\n\r\n".encode()
    s.sendall(one + two + one)  # three requests in one write
    answers = [read_response(s, buffer) for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 200]
    assert json.loads(answers[0][2])["status"] == "ok"
    assert json.loads(answers[1][2])["object"] == "list"
    s.sendall(one)  # the connection is still good
    assert read_response(s, buffer)[0] == 200
    s.close()


def test_chunked_request_bodies_and_100_continue(gateway):
    key = gateway.key()
    body = json.dumps({"model": "fake-chat", "messages": [{"role": "user", "content": "hi [[reply:2]]"}]}).encode()
    s = connect(gateway)
    buffer = bytearray()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key["sk"].encode()
              + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    for piece in (body[:10], body[10:]):
        s.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
    s.sendall(b"0\r\n\r\n")
    status, headers, answer = read_response(s, buffer)
    assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"] == " w0 w1"
    assert headers["x-request-cost-nanos"]
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key["sk"].encode()
              + b"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n")
    interim = s.recv(1024)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    buffer += interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    s.sendall(body)
    assert read_response(s, buffer)[0] == 200
    s.close()


def test_head_and_connection_close(gateway):
    s = connect(gateway)
    s.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break  # the server closed the connection, as asked
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and rest == b""
    assert b"connection: close" in head.lower()


def test_malformed_requests_get_400_and_the_server_lives_on(gateway):
    s = connect(gateway)
    s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 400")
    s.close()
    assert httpx.get(gateway.url + "/health").status_code == 200


def test_the_removed_server_option_is_refused_clearly(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "t.toml"
    config.write_text('[server]\nhttp = "tollgate"\n')
    done = subprocess.run([sys.executable, "-m", "tollgate", "serve", "--config", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "server.http: the built-in HTTP server was removed" in done.stderr


def test_a_stream_and_a_health_check(gateway_factory, fake_upstream):
    gw = gateway_factory(fake_config(fake_upstream.url))
    key = gw.key()
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key['sk']}"},
                   json={"model": "fake-chat", "stream": True, "messages": [{"role": "user", "content": "[[reply:3]]"}]})
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
    assert httpx.get(gw.url + "/health").json()["status"] == "ok"
