"""What writing a usage record into SQLite costs, by how many keys are in use and how many records a commit holds.

(bench/ledger_apply.py compares the bulk write path with executemany beside a busy event loop; this one
varies the keys and the commit size.)

The gateway's database thread writes journaled batches with `tollgate.ledger.sql.apply_entries` and rolls
them up every few seconds (`store/rollup.py`, issue 18): with many keys each record's key sits on pages of
its own (its index entries, its aggregate rows, its key's spend counter), and every commit or roll-up
writes each page it touched once. This times exactly that path, in this process, on a fresh SQLite file
with the store's migrations and settings (WAL, synchronous=NORMAL, the store's page cache), keys spread
over accounts as `many_keys_db.py` spreads them (key k in account k % min(keys, 1,000)), a roll-up every
ROLL_UP_EVERY records (90,000: about ROLL_UP_SECONDS, 30 s, of the gateway's at 3,000 a second; EVERY in the
environment), and a passive WAL checkpoint every
`store/checkpoint.py` CHECKPOINT_EVERY_ROWS changed rows (or CKPT in the environment). Printed: the
microseconds a record cost in each stage over the last two thirds of the run (TOTAL records in all, 120,000).

Each SPEC is KEYS:PER_COMMIT[:DROP], DROP a comma list of what to leave out, to see what each part costs:
`rollup` (the roll-ups: records stay in the inbox), `keytime` / `accttime` (the per-key / per-account time
indexes), `spend` (the key's own spend counter).

    .venv/bin/python bench/keys_apply.py 100:300 100000:300 100000:300:keytime,accttime
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
from tollgate.store.checkpoint import CHECKPOINT_EVERY_ROWS
from tollgate.store.rollup import roll_up
from tollgate.store.sqlite import CACHE_KIB

START = 1_765_000_000
ROLL_UP_EVERY = int(os.environ.get("EVERY", 90_000))  # records: about ROLL_UP_SECONDS (30 s) of the gateway's at 3,000/s
ACCOUNTS = 1000  # as bench/many_keys_db.py: key k belongs to account k % min(keys, ACCOUNTS)
DROPS = {"keytime": "DROP INDEX usage_key_time",
         "accttime": "DROP INDEX usage_account_time"}


def record(n: int, key: int, account: int) -> UsageRecord:
    return UsageRecord(f"req-{n:032d}", START + n / 2400, f"acct_bench{account:07d}", f"key_b{key:011d}",
                       f"sub_bench{account:07d}", "fake-gpt-4o-mini", "gpt-4o-mini", None, "chat", 200, 20, 10, 9000,
                       1.5, False, False, window_start=START, key_window_start=START, client="wrk",
                       usage_basis="upstream")


def run(keys: int, per_commit: int, drop: set[str], total: int = 120_000) -> dict[str, float]:
    """Microseconds a record spent in each stage (apply, roll-up, commit, checkpoint) over the last two
    thirds of the run."""
    accounts = min(keys, ACCOUNTS)
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(Path(folder) / "apply.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"cache_size=-{CACHE_KIB}", "wal_autocheckpoint=0"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")
        migrate(conn)
        conn.execute("COMMIT")
        for part in drop - {"spend", "rollup"}:
            conn.execute(DROPS[part])
        rng, n, seq, measured, rolled, changed = random.Random(1), 0, 0, 0, 0, 0
        spent = dict.fromkeys(("apply", "roll-up", "commit", "checkpoint"), 0.0)
        while n < total:
            records, increments = [], {}
            for _ in range(per_commit):
                key = rng.randrange(keys)
                account = key % accounts
                n += 1
                records.append(record(n, key, account))
                pools = [f"sub:sub_bench{account:07d}"] + ([] if "spend" in drop else [f"key:key_b{key:011d}"])
                for pool in pools:
                    increments[pool] = increments.get(pool, 0) + 9000
            seq += 1
            rows = journal_json(ledger_rows(LedgerBatch(
                records, [SpendIncrement(pool, START, amount) for pool, amount in increments.items()], [], [])))
            before = conn.total_changes
            times = [time.perf_counter()]
            conn.execute("BEGIN")
            apply_entries(conn, [(seq, rows)])
            times.append(time.perf_counter())
            if "rollup" not in drop and n - rolled >= ROLL_UP_EVERY:
                roll_up(conn, START + n / 2400)  # the clock: the last record's time
                rolled = n
            times.append(time.perf_counter())
            conn.execute("COMMIT")
            times.append(time.perf_counter())
            changed += conn.total_changes - before
            if changed >= int(os.environ.get("CKPT", CHECKPOINT_EVERY_ROWS)):  # as store/checkpoint.py
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                changed = 0
            times.append(time.perf_counter())
            if n > total // 3:
                for stage, (a, b) in zip(spent, zip(times, times[1:])):
                    spent[stage] += b - a
                measured += per_commit
        conn.close()
        return {stage: seconds * 1e6 / measured for stage, seconds in spent.items()}


def main() -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    for spec in sys.argv[1:] or ["100:300", "100000:300"]:
        keys, per_commit, *rest = spec.split(":")
        drop = set(rest[0].split(",")) if rest and rest[0] else set()
        stages = run(int(keys), int(per_commit), drop, int(os.environ.get("TOTAL", 120_000)))
        split = "  ".join(f"{stage} {us:5.1f}" for stage, us in stages.items())
        print(f"{spec:32s} {sum(stages.values()):6.1f} us/record   ({split})", flush=True)


if __name__ == "__main__":
    main()
