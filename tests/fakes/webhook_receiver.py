"""A real HTTP receiver for alert webhooks, on a thread of the test process (http.server).

It records every POST (path, headers, body), checks its `Tollgate-Signature` with the secret it
is given, and can be told to answer the next N requests with an error status. Stop it and start
another on the same port to play a receiver that is down for a while (connection refused).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tollgate.alerts.signing import verify


class Received:
    def __init__(self, path: str, headers: dict[str, str], body: bytes, signed: bool) -> None:
        self.path, self.headers, self.body, self.signed = path, headers, body, signed
        self.event = json.loads(body)


class WebhookReceiver:
    def __init__(self, port: int = 0, secret: str | None = None) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.fail_next = 0  # answer this many requests with `fail_status`
        self.fail_status = 500
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    signed = receiver.secret is not None and verify(
                        receiver.secret, headers.get("tollgate-signature", ""), body, time.time())
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = receiver.fail_status
                    else:
                        status = 204
                        receiver.received.append(Received(self.path, headers, body, signed))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/tollgate"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def events(self, kind: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if kind is None or r.event["type"] == kind]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
