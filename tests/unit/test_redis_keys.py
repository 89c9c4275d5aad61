"""Every key one ledger script touches hashes to one Redis Cluster slot: the account's hash tag."""

from __future__ import annotations

from redis.crc import key_slot

from tollgate.domain.accounts import Account, ApiKey, KeyContext, Plan, Subscription
from tollgate.domain.pools import pools_for
from tollgate.ledger.redis.keys import bucket_key, rate_key, settled_key, slot_keys


def test_a_requests_pools_and_its_grant_marker_share_one_cluster_slot() -> None:
    plan = Plan("standard", "Standard", 0, 30, 5 * 3600, 140_000_000, 60, 3_333)
    ctx = KeyContext(ApiKey("key_1", "acct_1", "subscription", "k", "p", 0, subscription_id="sub_1",
                            budget_limit=50_000_000, budget_window=3600),
                     Account("acct_1", "A", 0), Subscription("sub_1", "acct_1", "standard", "active", 0, 0, 10**10), plan)
    pools = pools_for(ctx)
    assert [p.kind for p in pools] == ["subscription", "key"] and {p.account for p in pools} == {"acct_1"}
    keys = [k for pool in pools for k in slot_keys("tg", pool, 1_764_000_000)]
    keys.append(settled_key("tg", pools[0], "grant-1"))
    keys.append(bucket_key("tg", pools[1], "key_1"))  # the key's rate buckets, taken in the same scripts
    assert len(set(keys)) == 10  # four per pool, the marker and the buckets, all distinct
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{acct_1}")}
    # Another account's keys land elsewhere (the tag is what decides), and the standalone limiter's bucket
    # (not used by the Redis ledger, which takes the account-tagged one above) is in the key's own slot.
    assert key_slot(slot_keys("tg", pools[0], 0)[0].replace("acct_1", "acct_2", 1).encode()) == key_slot(b"{acct_2}")
    assert key_slot(rate_key("tg", "key_1").encode()) == key_slot(b"{key_1}")
