"""What writing a usage record into SQLite costs, by how many keys are in use and how many records a commit holds.

(bench/ledger_apply.py compares the bulk write path with executemany beside a busy event loop; this one
varies the keys and the commit size.)

The gateway's database thread writes journaled batches with `tollgate.ledger.sql.apply_entries` (issue 18):
with many keys each record's key sits on pages of its own (its index entries, its key's spend counter),
and every commit writes each page it touched once. This times exactly that path, in this process, on a
fresh SQLite file with the store's migrations and settings (WAL, synchronous=NORMAL, the store's page
cache), a roll-up of the usage aggregates every 12,000 records as the store does (`store/rollup.py`), and a
WAL checkpoint as often; records per second over the last two thirds of the run.

Each SPEC is KEYS:PER_COMMIT[:DROP], DROP a comma list of what to leave out, to see what each part costs:
`queue` (the roll-up queue and roll-ups), `keytime` / `accttime` (the per-key / per-account time
indexes), `spend` (the key's own spend counter).

    .venv/bin/python bench/keys_apply.py 100:120 100000:120 100:500 100000:500 100000:500:spend
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement
from tollgate.ledger.sql import apply_entries, journal_json, ledger_rows
from tollgate.store.migrate import migrate
from tollgate.store.rollup import roll_up
from tollgate.store.sqlite import CACHE_KIB

START = 1_765_000_000
ROLL_UP_EVERY = 12_000
DROPS = {"queue": "DROP TRIGGER usage_queued", "keytime": "DROP INDEX usage_key_time",
         "accttime": "DROP INDEX usage_account_time"}


def record(n: int, key: int) -> UsageRecord:
    return UsageRecord(f"req-{n:032d}", START + n / 2400, f"acct_{key // 1000}", f"key_{key}", "sub_bench",
                       "fake-gpt-4o-mini", "gpt-4o-mini", None, "chat", 200, 20, 10, 9000, 1.5, False, False,
                       window_start=START, key_window_start=START, client="wrk", usage_basis="upstream")


def run(keys: int, per_commit: int, drop: set[str], total: int = 120_000) -> float:
    """Records per second that `apply_entries` (and the roll-ups and checkpoints) wrote."""
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(Path(folder) / "apply.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"cache_size=-{CACHE_KIB}", "wal_autocheckpoint=0"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")
        migrate(conn)
        conn.execute("COMMIT")
        for part in drop - {"spend"}:
            conn.execute(DROPS[part])
        rng, n, seq, spent, measured, rolled = random.Random(1), 0, 0, 0.0, 0, 0
        while n < total:
            records, increments = [], {}
            for _ in range(per_commit):
                key = rng.randrange(keys)
                n += 1
                records.append(record(n, key))
                pools = [f"sub:{key // 1000}"] + ([] if "spend" in drop else [f"key:key_{key}"])
                for pool in pools:
                    increments[pool] = increments.get(pool, 0) + 9000
            seq += 1
            rows = journal_json(ledger_rows(LedgerBatch(
                records, [SpendIncrement(pool, START, amount) for pool, amount in increments.items()], [], [])))
            started = time.perf_counter()
            conn.execute("BEGIN")
            apply_entries(conn, [(seq, rows)])
            if "queue" not in drop and n - rolled >= ROLL_UP_EVERY:
                roll_up(conn)
                rolled = n
            conn.execute("COMMIT")
            if n % ROLL_UP_EVERY < per_commit:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if n > total // 3:
                spent += time.perf_counter() - started
                measured += per_commit
        conn.close()
        return measured / spent


def main() -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    for spec in sys.argv[1:] or ["100:120", "100000:120", "100:500", "100000:500"]:
        keys, per_commit, *rest = spec.split(":")
        drop = set(rest[0].split(",")) if rest and rest[0] else set()
        rate = run(int(keys), int(per_commit), drop)
        print(f"{spec:32s} {rate:>9,.0f} records/s  {1e6 / rate:6.1f} us/record", flush=True)


if __name__ == "__main__":
    main()
