"""Gateways in the scaled configuration for tests: instances with several workers on one PostgreSQL and one Redis.

Each `ScaledGateway` is one `tollgate serve --workers N` process tree (a supervisor and its workers) with a
config of its own: the shared database and Redis, and a journal directory of its own (as an instance
on its own machine would have). `worker_pids` asks /metrics (`tollgate_worker{worker, pid}`) until it
has seen every worker answer, so a test knows that all of them serve.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import fake_config
from tests.support.processes import Gateway

WORKER = re.compile(r'^tollgate_worker\{pid="(\d+)",worker="(\d+)"\} 1\.0$', re.M)  # (pid, slot)


def scaled_config(upstream_url: str, database: str, redis: str | None, workers: int, journal_dir: Path,
                  sections: dict | None = None, **server) -> dict:
    """`fake_config` (tests/conftest.py) on PostgreSQL (+ Redis) with `workers` processes; `sections` adds
    tables such as `{"redis": {"hold_seconds": 2}}`."""
    config = fake_config(upstream_url)
    config["server"] = {"database": database, "workers": workers, **({"redis": redis} if redis else {}), **server}
    config["ledger"] = {"journal_dir": str(journal_dir)}
    return {**config, **(sections or {})}


class ScaledGateway(Gateway):
    """One instance: `tollgate serve` with the config's workers; its own config file, log and journal."""

    def __init__(self, tmp: Path, name: str, upstream_url: str, database: str, redis: str | None,
                 workers: int = 2, env: dict | None = None, sections: dict | None = None, **server) -> None:
        root = tmp / name
        root.mkdir(parents=True, exist_ok=True)
        config = scaled_config(upstream_url, database, redis, workers, root / "journal", sections, **server)
        super().__init__(root, config, env)
        self.workers = workers

    def worker_of_one_request(self) -> tuple[int, int]:
        """(worker slot, pid) of the process that answered one /metrics request on a new connection."""
        r = httpx.get(self.url + "/metrics", headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30)
        assert r.status_code == 200, r.text
        found = WORKER.search(r.text)
        assert found is not None, "no tollgate_worker line in /metrics"
        return int(found.group(2)), int(found.group(1))

    def pinned_clients(self, tries: int = 200) -> dict[int, httpx.Client]:
        """One keep-alive client per worker slot: every request on it goes to that worker (its connection).

        Use them at once: an idle connection is closed after `[server.limits] keepalive_timeout` (5 s).
        """
        clients: dict[int, httpx.Client] = {}
        for _ in range(tries):
            client = httpx.Client(base_url=self.url, timeout=30)
            r = client.get("/metrics", headers={"Authorization": f"Bearer {self.admin_token}"})
            found = WORKER.search(r.text)
            assert found is not None, "no tollgate_worker line in /metrics"
            slot = int(found.group(2))
            if slot in clients:
                client.close()
            else:
                clients[slot] = client
            if len(clients) == self.workers:
                return clients
        for client in clients.values():
            client.close()
        raise AssertionError(f"only workers {sorted(clients)} answered in {tries} connections")

    def worker_pids(self, tries: int = 400, parallel: int = 8) -> dict[int, int]:
        """{slot: pid} of the workers seen answering, asking until every slot answered or `tries` requests."""
        seen: dict[int, int] = {}
        with ThreadPoolExecutor(parallel) as pool:
            for batch in _batches(tries, parallel):
                for slot, pid in pool.map(lambda _: self.worker_of_one_request(), range(batch)):
                    seen[slot] = pid
                if len(seen) == self.workers:
                    break
        return seen


def _batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


def chat(gw: Gateway, sk: str) -> httpx.Response:
    """One small chat completion with the key."""
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {sk}"}, timeout=30,
                      json={"model": "fake-chat", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]})


@contextmanager
def two_instances(tmp: Path, upstream_url: str, database: str, redis: str, workers: int,
                  sections: dict | None = None) -> Iterator[tuple[ScaledGateway, ScaledGateway]]:
    """Instances `a` and `b` on one database and Redis, started; each stops cleanly at the end (its log if not)."""
    started: list[ScaledGateway] = []
    try:
        for name in ("a", "b"):
            gw = ScaledGateway(tmp, name, upstream_url, database, redis, workers=workers, sections=sections)
            started.append(gw)
            gw.start("/health", timeout=90)
        yield started[0], started[1]
    finally:
        for gw in started:
            assert gw.stop() == 0, gw.log.read_text()[-3000:]
