"""How fast the database thread writes journaled ledger batches into SQLite, alone and beside a busy event loop.

The gateway's event loop keeps its core and its GIL busy under load; the database thread must
write what settled meanwhile. Python's sqlite3 binds each row's parameters holding the GIL and
lets go of it for the step: with `executemany`, every row of a batch waits to get the GIL back
from the busy thread (a switch interval, 5 ms, at worst). The bulk path (ledger/sql.py
`apply_entries`) hands SQLite the journal's own JSON and inserts every row of a hand-off in one
statement per table: Python is needed once per statement. The process is pinned to one CPU,
as bench/gateway.sh runs the gateway (its event loop and database thread share a core). Same
rows, same schema (the trigger that queues each record for the aggregates included), same run:

    .venv/bin/python bench/ledger_apply.py 10               # about 30 s
    .venv/bin/python bench/ledger_apply.py 10 --two-cores   # the threads not pinned: the GIL convoy
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch, SpendIncrement
from tollgate.ledger.sql import apply_entries, apply_rows, journal_json, ledger_rows
from tollgate.store.migrate import migrate

RECORDS_PER_ENTRY, ENTRIES_PER_HANDOFF = 200, 20


def record(n: int) -> UsageRecord:
    return UsageRecord(f"req-{n:032d}", 1_765_000_000.0 + n / 1000, "acct_bench", f"key_{n % 100}", "sub_bench",
                       "fake-gpt-4o-mini", "gpt-4o-mini", None, "chat", 200, 20, 10, 9000, 1.5, False, False,
                       window_start=1_765_000_000, key_window_start=1_765_000_000, client="wrk",
                       usage_basis="upstream")


def run(bulk: bool, busy_loop: bool, handoffs: int) -> float:
    """Records per second written by `apply_entries` (bulk) or `executemany` (rows) on a fresh database."""
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(Path(folder) / "bench.db", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN")
        migrate(conn)
        conn.execute("COMMIT")
        stop = threading.Event()

        def spin() -> None:  # a busy event loop: pure Python, holding the GIL whenever it can
            n = 0
            while not stop.is_set():
                n += 1

        spinner = threading.Thread(target=spin) if busy_loop else None
        if spinner:
            spinner.start()
        seq, spent = 0, 0.0
        try:
            for _ in range(handoffs):
                entries = []
                for _ in range(ENTRIES_PER_HANDOFF):
                    seq += 1
                    first = seq * RECORDS_PER_ENTRY
                    batch = LedgerBatch([record(first + i) for i in range(RECORDS_PER_ENTRY)],
                                        [SpendIncrement("sub:bench", 1_765_000_000, 9000 * RECORDS_PER_ENTRY)], [], [])
                    entries.append((seq, ledger_rows(batch)))
                if bulk:
                    entries = [(s, journal_json(rows)) for s, rows in entries]
                started = time.perf_counter()
                conn.execute("BEGIN")
                if bulk:
                    apply_entries(conn, entries)
                else:
                    merged: tuple = ([], [], [], [], [])
                    for _, rows in entries:
                        for into, part in zip(merged, rows):
                            into.extend(part)
                    apply_rows(conn, merged)
                conn.execute("COMMIT")
                spent += time.perf_counter() - started
        finally:
            stop.set()
            if spinner:
                spinner.join()
            conn.close()
    return handoffs * ENTRIES_PER_HANDOFF * RECORDS_PER_ENTRY / spent


def main() -> None:
    handoffs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    one_core = "--two-cores" not in sys.argv
    if one_core:
        os.sched_setaffinity(0, {0})
    print("one core (as bench/gateway.sh pins the gateway)" if one_core else "threads free to use both cores")
    rows = [("bulk (one statement per table)", True), ("executemany (one step per row)", False)]
    figures = {}
    print(f"{handoffs} hand-offs of {ENTRIES_PER_HANDOFF} x {RECORDS_PER_ENTRY} records each")
    print("| write path | records/s, idle loop | records/s, busy loop |\n|---|---|---|")
    for name, bulk in rows:
        idle = run(bulk, False, handoffs)
        busy = run(bulk, True, max(1, handoffs // 5) if not bulk else handoffs)
        figures[bulk] = busy
        print(f"| {name} | {idle:,.0f} | {busy:,.0f} |")
    print(f"beside a busy event loop the bulk path writes {figures[True] / figures[False]:,.0f}x as many records/s")


if __name__ == "__main__":
    main()
