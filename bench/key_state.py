"""What a request's per-key state costs in memory, 100 keys against 100,000, in this process (issue 18).

The part of the request path that reads and writes per-key state: the key cache (`ConsumptionAuth`,
a hit), the key's pools, limits and rate buckets (`Admitter`), the ledger's reserve and settle on the
key's pools (`EmbeddedLedger`) and its usage record; nothing else (no HTTP, no upstream, no database
writes: `bench/keys_apply.py` times those). With a hundred thousand keys in use every per-key object a
request touches is a trip to main memory, and on this VM a cache and TLB miss costs 0.3-0.7 us; this
counts what that adds up to, without the gateway's throughput's noise (bench/many_keys.py).

The contexts are the real ones of `bench/many_keys_db.py`'s database (built by `many_keys.py`, read here
through the store like a cold gateway reads them); the ledger's store writes nothing. Blocks of BLOCK
requests alternate 100 keys and 100,000 (a random key each), ROUNDS of each; printed: the median and
the fastest block of each, us a request (the box's noise only ever adds, so the fastest blocks are
the cleanest comparison).

    .venv/bin/python bench/key_state.py [--rounds 30] [--block 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tollgate.accounts.auth import ConsumptionAuth
from tollgate.config.schema import ModelConfig
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.ledger.embedded import EmbeddedLedger
from tollgate.ledger.writer import LedgerWriter
from tollgate.ledger.ratelimit import RateLimiter
from tollgate.proxy.admission import Admitter, KeyLimits
from tollgate.proxy.models import ServedModel
from tollgate.store.sqlite import SQLiteStore


class Discarding:
    """A ledger store that keeps nothing: the database's part is not what this times."""

    def backlog_full(self) -> bool:
        return False

    def backlog(self) -> None:
        return None

    async def read_spend(self, pool: str, window_start: int) -> int:
        return 0

    def write_ledger_now(self, batch: LedgerBatch) -> bool:
        return True

    async def write_ledger(self, batch: LedgerBatch) -> None:
        return None


async def main(args: argparse.Namespace) -> None:
    cache = args.db_cache
    if not (cache / "tollgate.db").exists():
        raise SystemExit(f"no database in {cache}: run bench/many_keys.py once (or bench/many_keys_db.py)")
    rotation = {"100 keys": (cache / "keys-100.txt").read_text().split(),
                "100,000 keys": (cache / "keys-100k.txt").read_text().split()}
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "tollgate.db"
        shutil.copyfile(cache / "tollgate.db", db)
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        try:
            await measure(args, store, rotation)
        finally:
            await store.close()


async def measure(args: argparse.Namespace, store: SQLiteStore, rotation: dict[str, list[str]]) -> None:
    auth = ConsumptionAuth(store)
    keys = rotation["100,000 keys"]
    for i in range(0, len(keys), 2000):  # every context cached, as after the gateway's warm pass
        await asyncio.gather(*(auth.authenticate(secret) for secret in keys[i:i + 2000]))
    ledger = EmbeddedLedger(Discarding(), LedgerWriter(Discarding()),  # type: ignore[arg-type]
                            reservation_ttl=600, admission_wait=5)
    admitter = Admitter(ledger, RateLimiter(), KeyLimits(10**6, 10**9))
    model = ServedModel(ModelConfig("m", ("u",), "m", 150_000_000, 600_000_000, context=8000, max_output=500), [])
    gc.collect()
    gc.freeze()

    async def block(secrets: list[str]) -> float:
        picks = [random.choice(secrets) for _ in range(args.block)]
        started = time.perf_counter()
        for secret in picks:
            ctx = await auth.authenticate(secret)
            admission = await admitter.admit(ctx, model, 100, 200)
            admitter.settle_rate(admission, 100, 20)
            record = UsageRecord("r", time.time(), ctx.account.id, ctx.key.id, ctx.key.subscription_id, "m", None,
                                 None, "chat", 200, 100, 20, 0, 1.0, False, False)
            await ledger.settle(admission.grant, 27_000, record)
        return (time.perf_counter() - started) / args.block * 1e6

    for secrets in rotation.values():  # each once, unmeasured
        await block(secrets)
    times: dict[str, list[float]] = {name: [] for name in rotation}
    for _ in range(args.rounds):
        for name, secrets in rotation.items():
            times[name].append(await block(secrets))
    for name, values in times.items():
        print(f"{name:13s} median {statistics.median(values):6.2f} us  fastest {min(values):6.2f} us")
    few, many = times.values()
    print(f"100,000 keys cost {statistics.median(many) - statistics.median(few):.2f} us a request more (medians),"
          f" {min(many) - min(few):.2f} (fastest blocks)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-cache", type=Path, default=Path("/tmp/many-keys-db"))
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
