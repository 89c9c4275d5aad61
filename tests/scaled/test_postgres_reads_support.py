"""What the contract tests of the PostgreSQL reads share (no tests here): the stores, the data, the seeding.

`both_stores` opens a SQLite store in a folder and a PostgreSQL store on a fresh database of the
session's real server; `seed` writes the same accounts, keys and records through each store's own
write path (`write_ledger`, `prune_usage`), so the reads compare what the stores really hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tollgate.domain.accounts import Account, ApiKey
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.postgres import PostgresStore
from tollgate.store.sqlite import SQLiteStore

ACCOUNT, OTHER = "acct_a", "acct_b"
KEYS = ("key_1", "key_2", "key_idle")  # key_idle never spends
LABELS = {"key_1": "alice", "key_2": None, "key_idle": "alice"}  # end users


def usage(n: int, at: float, account: str, key: str, cost: int, input_tokens: int, output_tokens: int,
          cached: int | None = None, saved: int | None = None) -> UsageRecord:
    """Record `n`: models, routes, statuses and request texts vary with `n`, so that every grouping has groups."""
    return UsageRecord(
        f"req_{n}", at, account, key if account == ACCOUNT else f"{key}_{account}", None, ("small", "big")[n % 2],
        ("up-a", None, "up-b")[n % 3], (None, "code", "simple")[n % 3], "chat", (200, 429, 502, 200)[n % 4],
        input_tokens, output_tokens, cost, 1.0, n % 5 == 0, n % 2 == 1, cached_prefix_tokens=cached,
        cache_saved=saved, request_text=f"text {n}" if n % 3 else None)


@asynccontextmanager
async def both_stores(postgres: Any, folder: Path) -> AsyncIterator[tuple[Any, Any]]:
    """(a SQLite store in `folder`, a PostgreSQL store on a new database of the server `postgres`), open."""
    sqlite = SQLiteStore(f"sqlite:///{folder / 'tollgate.db'}")
    await sqlite.open()
    scaled = PostgresStore(postgres.database(), journal_dir=folder / "journal", pool_max=2)
    await scaled.open()
    try:
        yield sqlite, scaled
    finally:
        await scaled.close()
        await sqlite.close()


async def seed(store: Any, rows: list[UsageRecord], horizon: int | None) -> None:
    """Two accounts, the first with three keys (two labelled "alice"), the records, then a prune before `horizon`."""
    for n, account in enumerate((ACCOUNT, OTHER)):
        await store.create_account(Account(account, f"name {account}", n))
    for n, key_id in enumerate(KEYS):
        await store.create_api_key(ApiKey(key_id, ACCOUNT, "credit", f"name {key_id}", "sk_x", n,
                                          end_user=LABELS[key_id]), f"hash_{key_id}")
    await store.revoke_api_key("key_idle", 5)
    await store.write_ledger(LedgerBatch(rows, [], [], []))
    after: str | None = ""
    for _ in range(1000):
        if horizon is None or after is None:
            return
        _, after = await store.prune_usage(horizon, 7, after)
    raise AssertionError("the prune never finished")
