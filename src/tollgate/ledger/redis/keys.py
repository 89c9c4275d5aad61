"""Redis key names: every key of an account's budgets carries the hash tag `{<account id>}`.

All the pools one request draws from belong to one account, so all their keys hash to
one Redis Cluster slot and each script touches a single slot. Per (pool, window start):

    <prefix>:{<account>}:s:<pool>:<start>   spend settled in the window (INCRBY, integer nano-dollars)
    <prefix>:{<account>}:r:<pool>:<start>   total of the open holds (INCRBY/DECRBY)
    <prefix>:{<account>}:z:<pool>:<start>   sorted set: grant id -> hold deadline (server ms)
    <prefix>:{<account>}:h:<pool>:<start>   hash: grant id -> amount held

and per grant, `<prefix>:{<account>}:d:<grant>`: the settled marker (what it charged); per API key,
`<prefix>:{<account>}:q:<key>`: its rpm and tpm buckets (a hash), in the account's slot too, so that
the reserve and settle scripts take and correct them in the same call (a key belongs to one account).
"""

from __future__ import annotations

from tollgate.domain.pools import Pool

SlotKeys = tuple[str, str, str, str]  # spend, reserved, deadlines, amounts


def tag(pool: Pool) -> str:
    """The hash tag of a pool's keys: its account (its own id for a pool built without one)."""
    return pool.account or pool.id


def slot_keys(prefix: str, pool: Pool, start: int) -> SlotKeys:
    base = f"{prefix}:{{{tag(pool)}}}:"
    rest = f":{pool.id}:{start}"
    return base + "s" + rest, base + "r" + rest, base + "z" + rest, base + "h" + rest


def settled_key(prefix: str, pool: Pool, grant_id: str) -> str:
    return f"{prefix}:{{{tag(pool)}}}:d:{grant_id}"


def bucket_key(prefix: str, pool: Pool, key_id: str) -> str:
    """The rate buckets of an API key drawing on `pool` (any pool of its request: they share one tag)."""
    return f"{prefix}:{{{tag(pool)}}}:q:{key_id}"


def rate_key(prefix: str, key_id: str) -> str:
    """One hash per API key holds both of its per-minute buckets (its own slot: one key per script call)."""
    return f"{prefix}:{{{key_id}}}:rate"
