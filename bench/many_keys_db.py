"""Build a tollgate database with a million consumption keys, through the store, in about a minute.

A reseller's gateway: `--accounts` accounts (1,000), each with a `bench` plan subscription and
`--keys-per-account` subscription keys (1,000) that each have their own budget too, so every
request reserves and settles on two pools. Secrets are random like real ones (`sk_` + 32
random bytes, URL-safe base64) and stored as their SHA-256, as tollgate does (domain/secrets.py);
keys go in through `SQLiteStore.create_api_keys`, 50,000 per transaction, triggers and all.

Writes next to the database: `keys-100.txt` (one key of each of the first 100 accounts),
`keys-100k.txt` (the first 100 keys of every account), and `churn.json` (a management key of
account 0, its subscription, and ids of its keys that are in no rotation, to revoke).

    .venv/bin/python bench/many_keys_db.py /tmp/many-keys/tollgate.db
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import time
from pathlib import Path

from tollgate.domain.accounts import Account, ApiKey, ManagementKey, Plan, Subscription
from tollgate.domain.money import NANOS_PER_USD
from tollgate.domain.secrets import CONSUMPTION_PREFIX, MANAGEMENT_PREFIX, display_prefix, hash_secret, new_secret
from tollgate.store.sqlite import SQLiteStore

CHUNK = 50_000
DAY = 86_400
# As bench/gateway.sh's config writes it: the gateway re-states it at start, changing nothing.
BENCH_PLAN = Plan("bench", "Bench", 0, 30, DAY, 1_000_000 * NANOS_PER_USD, 1_000_000_000, 1_000_000_000)
KEY_BUDGET = 100_000 * NANOS_PER_USD  # per key per day, like bench/bench_key.sh


def secrets_fast(count: int) -> list[str]:
    """`count` secrets like `new_secret("sk_")`, from one read of the OS's randomness."""
    raw = os.urandom(32 * count)
    return [CONSUMPTION_PREFIX + base64.urlsafe_b64encode(raw[i:i + 32]).rstrip(b"=").decode()
            for i in range(0, len(raw), 32)]


async def build(db: Path, accounts: int, per_account: int) -> dict:
    now = int(time.time())
    store = SQLiteStore(f"sqlite:///{db}")
    await store.open()
    try:
        await store.upsert_plan(BENCH_PLAN)
        subs = []
        for a in range(accounts):
            account = Account(f"acct_bench{a:07d}", f"reseller {a}", now)
            await store.create_account(account)
            sub = Subscription(f"sub_bench{a:07d}", account.id, "bench", "active", now, now, now + 365 * DAY)
            await store.create_subscription(sub)
            subs.append(sub)
        mk_secret = new_secret(MANAGEMENT_PREFIX)
        await store.create_management_key(
            ManagementKey("mkey_bench0000000", subs[0].account_id, "churn", display_prefix(mk_secret), now),
            hash_secret(mk_secret))
        rotation_100, rotation_100k, revocable, pending = [], [], [], []
        for a, sub in enumerate(subs):
            for k, secret in enumerate(secrets_fast(per_account)):
                key = ApiKey(f"key_b{a:06d}{k:05d}", sub.account_id, "subscription", f"user {k}",
                             display_prefix(secret), now, sub.id, KEY_BUDGET, DAY, end_user=f"user-{a}-{k}")
                pending.append((key, hashlib.sha256(secret.encode()).hexdigest()))
                if k < 100:
                    rotation_100k.append(secret)
                if k == 0 and a < 100:
                    rotation_100.append(secret)
                if a == 0 and k >= per_account // 2:
                    revocable.append(key.id)
            if len(pending) >= CHUNK:
                await store.create_api_keys(pending)
                pending = []
        if pending:
            await store.create_api_keys(pending)
    finally:
        await store.close()
    folder = db.parent
    (folder / "keys-100.txt").write_text("\n".join(rotation_100) + "\n")
    (folder / "keys-100k.txt").write_text("\n".join(rotation_100k) + "\n")
    churn = {"management_key": mk_secret, "account": subs[0].account_id, "subscription": subs[0].id,
             "revocable": revocable}
    (folder / "churn.json").write_text(json.dumps(churn))
    return {"keys": accounts * per_account, "accounts": accounts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, help="the database to create (its folder gets the key lists)")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--keys-per-account", type=int, default=1000)
    args = parser.parse_args()
    if args.db.exists():
        raise SystemExit(f"{args.db} exists: give a new path")
    args.db.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    done = asyncio.run(build(args.db, args.accounts, args.keys_per_account))
    print(f"{done['keys']:,} keys in {done['accounts']:,} accounts: {args.db} "
          f"({args.db.stat().st_size / 1e6:.0f} MB, {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
