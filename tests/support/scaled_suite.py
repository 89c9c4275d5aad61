"""`TOLLGATE_TEST_STORE=scaled`: the test gateways on PostgreSQL and Redis instead of SQLite.

`make test` runs the suite on the embedded configuration, then a set of integration files again
this way (the Makefile's `test-scaled-suite`): every `Gateway` a test starts without a database of
its own choosing gets a fresh PostgreSQL database, the shared Redis (keys of different gateways
never meet: every budget key carries its account's random id) and a journal directory of its own.
The two servers start once, on first use, and stop when the test process exits.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import uuid
from pathlib import Path

from tests.support.services import PostgresServer, RedisServer

SCALED = os.environ.get("TOLLGATE_TEST_STORE") == "scaled"


class _Backends:
    """The PostgreSQL cluster and Redis server of one test process, started on first use."""

    def __init__(self) -> None:
        self.postgres: PostgresServer | None = None
        self.redis: RedisServer | None = None

    def started(self) -> tuple[PostgresServer, RedisServer]:
        if self.postgres is None or self.redis is None:
            self.postgres = PostgresServer().init().start()
            atexit.register(self.postgres.remove)
            self.redis = RedisServer(Path(tempfile.mkdtemp(prefix="tollgate-redis-"))).start()
            atexit.register(self.redis.kill)
        return self.postgres, self.redis


_backends = _Backends()


def scaled(config: dict, tmp: Path) -> dict:
    """`config` on PostgreSQL and Redis when the suite runs scaled and the test chose no database; else as it is."""
    if not SCALED or "database" in config.get("server", {}):
        return config
    postgres, redis = _backends.started()
    server = {**config.get("server", {}), "database": postgres.database(), "redis": redis.url}
    ledger = {**config.get("ledger", {}), "journal_dir": str(tmp / f"journal-{uuid.uuid4().hex[:8]}")}
    return {**config, "server": server, "ledger": ledger}
