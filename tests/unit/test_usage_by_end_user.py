"""Usage by end user, summed by SQLite, equals the same grouping of the records in Python, to the nano-dollar.

Keys carry end-user labels (one without any, one revoked, one that never spends, one of another account);
records fall on either side of the range's edges. The reference is `spend_report` over the chosen records
and a plain dictionary of sums per label.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollgate.domain.accounts import Account, ApiKey
from tollgate.domain.spend import Spend, report_of, spend_report
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.sqlite import SQLiteStore

ACCOUNT, OTHER = "acct_a", "acct_b"
# key id -> (account, end user, revoked)
KEYS = {
    "key_alice_1": (ACCOUNT, "alice", False),
    "key_alice_2": (ACCOUNT, "alice", True),
    "key_bob": (ACCOUNT, "bob", False),
    "key_none": (ACCOUNT, None, False),
    "key_idle": (ACCOUNT, "carol", False),  # never spends
    "key_other": (OTHER, "alice", False),  # another account's alice
}
SPENDING = [k for k in KEYS if k != "key_idle"]
T0 = 1_800_000_000

records = st.lists(
    st.tuples(st.floats(T0 - 3 * 86400, T0 + 3 * 86400, allow_nan=False), st.sampled_from(SPENDING),
              st.integers(0, 10**12), st.integers(0, 10**6), st.integers(0, 10**6), st.none() | st.integers(0, 10**6),
              st.none() | st.integers(-10**9, 10**9)),
    max_size=30,
)
edges = st.none() | st.floats(T0 - 2 * 86400, T0 + 2 * 86400, allow_nan=False)


def record(n: int, at: float, key_id: str, cost: int, tokens_in: int, tokens_out: int, cached: int | None,
           saved: int | None) -> UsageRecord:
    return UsageRecord(f"req_{n}", at, KEYS[key_id][0], key_id, None, "m", None, None, "chat", 200, tokens_in,
                       tokens_out, cost, 1.0, False, False, cached_prefix_tokens=cached, cache_saved=saved)


async def filled(folder: Path, rows: list[UsageRecord]) -> SQLiteStore:
    store = SQLiteStore(f"sqlite:///{folder / 'end-users.db'}")
    await store.open()
    for account in (ACCOUNT, OTHER):
        await store.create_account(Account(account, account, 0))
    for n, (key_id, (account, end_user, revoked)) in enumerate(KEYS.items()):
        await store.create_api_key(ApiKey(key_id, account, "credit", key_id, "sk_x", n, end_user=end_user),
                                   f"hash_{key_id}")
        if revoked:
            await store.revoke_api_key(key_id, n)
    await store.write_ledger(LedgerBatch(rows, [], [], []))
    return store


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, edges, edges)
def test_sums_by_end_user_equal_the_python_grouping(raw, since, until):
    rows = [record(n, *r) for n, r in enumerate(raw)]
    in_range = [r for r in rows if r.account_id == ACCOUNT and (since is None or r.created_at >= since)
                and (until is None or r.created_at < until)]

    async def main(folder: Path):
        store = await filled(folder, rows)
        try:
            return (await store.usage_by_end_user(ACCOUNT, since, until),
                    await store.usage_by_end_user(ACCOUNT, since, until, "alice"),
                    await store.end_user_summary(ACCOUNT, "alice", since, until))
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as folder:
        grouped, alice_only, alice = asyncio.run(main(Path(folder)))

    expected: dict[str | None, Spend] = {label: Spend() for label in ("alice", "bob", "carol", None)}
    for r in in_range:
        expected[KEYS[r.key_id][1]].add_record(r)
    assert [(g.end_user, g.spend) for g in grouped] == [(label, expected[label]) for label in ("alice", "bob", "carol", None)]
    assert [(g.end_user, g.keys, g.active_keys) for g in grouped] == \
        [("alice", 2, 1), ("bob", 1, 1), ("carol", 1, 1), (None, 1, 1)]
    assert alice_only == grouped[:1]

    alice_rows = [r for r in in_range if KEYS[r.key_id][1] == "alice"]
    assert report_of(alice) == spend_report(alice_rows, None)
    per_key = {k: Spend() for k in ("key_alice_1", "key_alice_2")}
    for r in alice_rows:
        per_key[r.key_id].add_record(r)
    assert alice.by_key == [(k, k, spend) for k, spend in per_key.items()]
