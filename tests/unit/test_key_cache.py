"""The key cache on the request path, with a real store: changes drop exactly what they touch.

Every change here goes through the real store (its triggers write the change log, its counter
file is what a second process maps); only the clock is fake. A second `SQLiteStore` on the same
file stands for another process (the CLI): only one gateway may serve a database, but any
process may change its accounts.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import replace

import pytest

from tollgate.accounts.auth import ConsumptionAuth
from tollgate.accounts.service import AccountService
from tollgate.domain.accounts import Account, ApiKey, KeyContext, Plan
from tollgate.domain.lru import LRU
from tollgate.domain.refusals import KeyRefused
from tollgate.domain.secrets import hash_secret
from tollgate.ledger.ratelimit import RateLimiter
from tollgate.proxy.admission import Admitter, KeyLimits
from tollgate.store.sqlite import SQLiteStore

NOW = 1_800_000_000.0
PLAN = Plan("p", "P", 0, 30, 18000, 10**8, 60, 1000)


def test_the_lru_keeps_its_capacity_forgets_the_least_recently_used_and_counts():
    evicted = []
    lru: LRU[str, int] = LRU(3, on_evict=lambda k, v: evicted.append(k))
    for n, key in enumerate("abc"):
        lru.put(key, n)
    assert lru.get("a") == 0  # now the most recently used: "b" is the oldest
    assert lru.get("zz") is None
    lru.put("d", 3)
    assert len(lru) == 3 and "b" not in lru and evicted == ["b"]
    assert lru.invalidate("c") == 2 and evicted == ["b", "c"]
    assert lru.invalidate("c") is None
    for n in range(100):
        lru.put(f"k{n}", n)
    stats = lru.stats()
    assert (stats.size, stats.capacity, stats.hits, stats.misses) == (3, 3, 1, 1)
    assert (stats.evictions, stats.invalidations) == (1 + 99, 1)  # b, then every k but the last three; and c
    with pytest.raises(ValueError):
        LRU(0)


def test_the_lru_keeps_recency_by_halves():
    """A hit in the young half moves nothing (the cost it saves: bench/many_keys.py); an entry used while at least
    half the capacity of other keys were not is never the one forgotten; the ceiling always holds."""
    lru: LRU[int, int] = LRU(10)
    for key in range(10):
        lru.put(key, key)
    order = [k for k, _ in lru.recent(10)]
    for key in range(5, 10):  # the five youngest
        assert lru.get(key) == key
    assert [k for k, _ in lru.recent(10)] == order
    assert lru.get(0) == 0 and lru.recent(1)[0][0] == 0  # the oldest moves up

    rng = random.Random(7)
    capacity = 40
    evicted: list[int] = []
    lru = LRU(capacity, on_evict=lambda k, v: evicted.append(k))
    uses: list[int] = []  # every key used, in order
    for _ in range(20_000):
        key = rng.randrange(150)
        if lru.get(key) is None:
            before = lru.evictions
            evicted.clear()
            lru.put(key, key)
            if lru.evictions > before:
                (gone,) = evicted
                last = len(uses) - 1 - uses[::-1].index(gone)
                assert len(set(uses[last + 1:])) >= capacity // 2
        uses.append(key)
        assert len(lru) <= capacity
    assert lru.stats().evictions > 1000  # the property was put to the test


class World:
    """A store with a plan, two accounts with a subscription and keys each; the auth under test."""

    def __init__(self, tmp_path) -> None:
        self.url = f"sqlite:///{tmp_path / 'keys.db'}"
        self.now = [NOW]
        self.store = SQLiteStore(self.url)
        self.accounts = AccountService(self.store, clock=lambda: self.now[0])

    async def open(self, capacity: int = 1000) -> None:
        await self.store.open()
        await self.store.upsert_plan(PLAN)
        self.auth = ConsumptionAuth(self.store, clock=lambda: self.now[0], capacity=capacity)

    async def customer(self, name: str, keys: int) -> tuple[str, str, list[tuple[str, str]]]:
        """(account id, subscription id, [(key id, secret)])."""
        account, _, _ = await self.accounts.create_account(name)
        sub = await self.accounts.grant_subscription(account.id, "p", 30)
        made = []
        for n in range(keys):
            key, secret = await self.accounts.create_subscription_key(account.id, f"k{n}", sub.id)
            made.append((key.id, secret))
        return account.id, sub.id, made

    async def cached_customer(self, name: str, keys: int) -> tuple[str, str, list[tuple[str, str]]]:
        """A customer (as `customer`) whose keys have each been used once, so their contexts are cached."""
        account_id, sub_id, made = await self.customer(name, keys)
        for _, secret in made:
            await self.auth.authenticate(secret)
        return account_id, sub_id, made

    def counts(self) -> tuple[int, int]:
        stats = self.auth.stats()
        return stats["hits"], stats["misses"]

    async def all_hits(self, secrets: list[str]) -> bool:
        """Whether authenticating each of `secrets` once is a cache hit for every one."""
        hits, misses = self.counts()
        for secret in secrets:
            await self.auth.authenticate(secret)
        return self.counts() == (hits + len(secrets), misses)


async def refused(auth: ConsumptionAuth, secret: str) -> str:
    with pytest.raises(KeyRefused) as info:
        await auth.authenticate(secret)
    return info.value.reason


def test_a_change_drops_only_the_contexts_it_touches(tmp_path):
    async def main():
        w = World(tmp_path)
        await w.open()
        a_id, a_sub, a_keys = await w.customer("a", 3)
        b_id, b_sub, b_keys = await w.customer("b", 2)
        secrets = [s for _, s in a_keys + b_keys]
        for secret in secrets:
            await w.auth.authenticate(secret)
        assert w.counts() == (0, 5) and await w.all_hits(secrets)

        # A key revoked: refused on its very next request; every other key stays cached.
        await w.accounts.revoke_key(a_id, a_keys[0][0])
        assert await refused(w.auth, a_keys[0][1]) == KeyRefused.REVOKED
        assert await w.all_hits(secrets[1:])

        # A key created: usable on its first request, and nothing else was dropped.
        _, fresh = await w.accounts.create_subscription_key(a_id, "new", a_sub)
        assert (await w.auth.authenticate(fresh)).key.name == "new"
        assert await w.all_hits(secrets[1:])

        # Credits granted to account b: b's contexts are re-read (with the new balance), a's stay.
        await w.accounts.grant_credits(b_id, 5 * 10**9)
        assert await w.all_hits(secrets[1:3])
        hits, misses = w.counts()
        assert (await w.auth.authenticate(b_keys[0][1])).account.credits_granted == 5 * 10**9
        assert w.counts() == (hits, misses + 1)

        # A subscription expired: its keys are refused on their next request; the other's are not.
        await w.accounts.expire_subscription(None, b_sub)
        for _, secret in b_keys:
            assert await refused(w.auth, secret) == KeyRefused.SUBSCRIPTION_EXPIRED
        assert await w.all_hits(secrets[1:3])

        # The plan changed: every context built from it is re-read, with the new limits.
        await w.store.upsert_plan(replace(PLAN, rpm=7))
        assert (await w.auth.authenticate(a_keys[1][1])).plan.rpm == 7
        assert w.auth.stats()["resets"] == 0  # every one of these was a targeted drop
        await w.store.close()

    asyncio.run(main())


def test_changes_made_by_another_process_are_seen_on_the_next_request(tmp_path):
    async def main():
        w = World(tmp_path)
        await w.open()
        a_id, a_sub, a_keys = await w.cached_customer("a", 2)
        other = SQLiteStore(w.url)  # another process: its own connection, the same counter file
        await other.open()
        await other.revoke_api_key(a_keys[0][0], int(NOW))
        assert await refused(w.auth, a_keys[0][1]) == KeyRefused.REVOKED
        assert await w.all_hits([a_keys[1][1]])
        key = ApiKey("key_other", a_id, "subscription", "other", "sk_x…", int(NOW), a_sub)
        await other.create_api_keys([(key, hash_secret("sk_made_elsewhere"))])
        assert (await w.auth.authenticate("sk_made_elsewhere")).key.id == "key_other"
        sub = await other.get_subscription(a_sub)
        await other.update_subscription(replace(sub, status="expired", current_period_end=int(NOW)))
        assert await refused(w.auth, a_keys[1][1]) == KeyRefused.SUBSCRIPTION_EXPIRED
        await other.close()
        await w.store.close()

    asyncio.run(main())


def test_a_reader_the_log_left_behind_drops_everything_and_stays_right(tmp_path):
    async def main():
        w = World(tmp_path)
        await w.open()
        a_id, a_sub, a_keys = await w.cached_customer("a", 2)
        # More changes than the log keeps (10,000), the revocation among the first of them.
        await w.accounts.revoke_key(a_id, a_keys[0][0])
        many = [(ApiKey(f"key_bulk{n}", a_id, "subscription", "bulk", "sk_b…", int(NOW), a_sub), hash_secret(f"sk_{n}"))
                for n in range(10_001)]
        await w.store.create_api_keys(many)
        assert await refused(w.auth, a_keys[0][1]) == KeyRefused.REVOKED
        assert w.auth.stats()["resets"] == 1
        assert (await w.auth.authenticate(a_keys[1][1])).key.id == a_keys[1][0]
        assert (await w.auth.authenticate("sk_10000")).key.id == "key_bulk10000"
        await w.store.close()

    asyncio.run(main())


def test_the_cache_is_bounded_and_counts_what_it_does(tmp_path):
    async def main():
        w = World(tmp_path)
        await w.open(capacity=4)
        _, _, keys = await w.customer("a", 6)
        for _, secret in keys:
            await w.auth.authenticate(secret)
        stats = w.auth.stats()
        assert (stats["size"], stats["capacity"], stats["misses"], stats["evictions"]) == (4, 4, 6, 2)
        assert await w.all_hits([s for _, s in keys[2:]])
        await w.auth.authenticate(keys[0][1])  # evicted: read again
        assert w.auth.stats()["misses"] == 7 and w.auth.stats()["size"] == 4
        await w.store.close()

    asyncio.run(main())


def test_keys_that_miss_together_are_read_together_once_each(tmp_path):
    async def main():
        w = World(tmp_path)
        await w.open()
        _, _, keys = await w.customer("a", 30)
        secrets = [s for _, s in keys]
        contexts = await asyncio.gather(*(w.auth.authenticate(secrets[n % 30]) for n in range(300)))
        assert [c.key.id for c in contexts] == [keys[n % 30][0] for n in range(300)]
        stats = w.auth.stats()
        assert stats["keys_read"] == 30  # each key read once, however many requests asked for it
        assert stats["store_reads"] <= 2  # the first miss's read, then one for every key that missed meanwhile
        await w.store.close()

    asyncio.run(main())


class GatedStore:
    """The real store, whose first key read waits for the test to let it finish."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()
        self.first = True

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    async def find_key_contexts(self, key_hashes):
        found = await self.store.find_key_contexts(key_hashes)  # read now: what a slow read would return
        if self.first:
            self.first = False
            self.reading.set()
            await self.gate.wait()
        return found


def test_a_read_that_began_before_a_revocation_serves_no_request_after_it(tmp_path):
    async def main():
        w = World(tmp_path)
        await w.open()
        a_id, _, keys = await w.customer("a", 1)
        key_id, secret = keys[0]
        gated = GatedStore(w.store)
        auth = ConsumptionAuth(gated, clock=lambda: NOW)  # type: ignore[arg-type]
        racing = asyncio.ensure_future(auth.authenticate(secret))
        await gated.reading.wait()  # the key was read, its answer not yet back
        await w.accounts.revoke_key(a_id, key_id)
        after = asyncio.ensure_future(auth.authenticate(secret))
        await asyncio.sleep(0.05)
        gated.gate.set()
        assert (await racing).key.id == key_id  # it began before the revocation: it may pass
        with pytest.raises(KeyRefused):
            await after  # it began after: it must not share the old read
        assert await refused(auth, secret) == KeyRefused.REVOKED  # and the old read was not cached
        await w.store.close()

    asyncio.run(main())


def test_keys_and_changes_are_read_while_the_writer_thread_is_busy(tmp_path):
    """A key that misses the cache, and the change log after a revocation, are read beside the ledger's writes:
    a roll-up holding the writer thread (here: a call that waits for the test) holds up no request."""

    async def main():
        w = World(tmp_path)
        await w.open()
        a_id, _, keys = await w.customer("a", 3)
        await w.auth.authenticate(keys[0][1])  # cached; the others are not
        await w.accounts.revoke_key(a_id, keys[0][0])
        release = threading.Event()
        writer_busy = asyncio.ensure_future(w.store._run(lambda c: release.wait(10)))
        other = SQLiteStore(w.url)  # another process, with a writer of its own
        try:
            # The revocation is seen (the change log read) and a key not cached found, the writer still busy.
            assert await asyncio.wait_for(refused(w.auth, keys[0][1]), 5) == KeyRefused.REVOKED
            found = await asyncio.wait_for(w.auth.authenticate(keys[1][1]), 5)
            assert found.key.id == keys[1][0]
            # A key made by another process meanwhile is usable on its first request.
            await other.open()
            key = ApiKey("key_late", a_id, "subscription", "late", "sk_x…", int(NOW), None)
            await other.create_api_keys([(key, hash_secret("sk_made_late"))])
            late = await asyncio.wait_for(w.auth.authenticate("sk_made_late"), 5)
            assert late.key.id == "key_late"
            assert not writer_busy.done()
        finally:
            release.set()
        assert await writer_busy is True
        await other.close()
        await w.store.close()

    asyncio.run(main())


def test_per_key_pools_and_limits_are_bounded_and_follow_a_replaced_context():
    admitter = Admitter(ledger=None, limiter=RateLimiter(), credit_limits=KeyLimits(5, 50), capacity=2)  # type: ignore[arg-type]
    account = Account("a", "A", 0, credits_granted=10)
    contexts = [KeyContext(ApiKey(f"k{n}", "a", "credit", "k", "p", 0), account, None, None) for n in range(3)]
    for ctx in contexts:
        assert admitter.key_state(ctx).limits == KeyLimits(5, 50)
    assert admitter.cache_stats().evictions == 1 and admitter.cache_stats().size == 2
    richer = replace(contexts[2], account=replace(account, credits_granted=99))
    assert admitter.key_state(richer).pools[0].limit == 99  # the new context, not the old entry
    assert admitter.key_state(richer).pools[0].limit == 99
    stats = admitter.cache_stats()
    assert (stats.hits, stats.misses, stats.invalidations) == (2, 3, 1)


def test_a_keys_rate_buckets_live_with_its_pools_and_survive_a_replaced_context(tmp_path):
    """The in-process limiter's buckets are in the key's `KeyState`: a change to the key (a new context) does
    not refill them, and a key that left the bounded map comes back to full buckets."""
    from tollgate.config.schema import ModelConfig
    from tollgate.domain.refusals import RateLimited
    from tollgate.ledger.embedded import EmbeddedLedger
    from tollgate.ledger.writer import LedgerWriter
    from tollgate.proxy.models import ServedModel

    async def main():
        store = SQLiteStore(f"sqlite:///{tmp_path / 'rate.db'}")
        await store.open()
        ledger = EmbeddedLedger(store, LedgerWriter(store), reservation_ttl=60, admission_wait=0)
        await ledger.start()
        admitter = Admitter(ledger, RateLimiter(clock=lambda: 100.0), KeyLimits(rpm=2, tpm=10**6), capacity=2)
        model = ServedModel(ModelConfig("m", ("u",), "m", 1, 1, context=1000, max_output=50), [])
        account = Account("a", "A", 0, credits_granted=10**9)
        ctx = KeyContext(ApiKey("k0", "a", "credit", "k", "p", 0), account, None, None)
        for _ in range(2):
            await ledger.release((await admitter.admit(ctx, model, 10, 10)).grant)
        with pytest.raises(RateLimited):
            await admitter.admit(ctx, model, 10, 10)
        renamed = replace(ctx, key=replace(ctx.key, name="renamed"))
        with pytest.raises(RateLimited):
            await admitter.admit(renamed, model, 10, 10)  # the same key: its buckets came along
        assert admitter.cache_stats().invalidations == 1
        for n in (1, 2):  # two other keys push it out of the map (capacity 2)
            other = KeyContext(ApiKey(f"k{n}", "a", "credit", "k", "p", 0), account, None, None)
            await ledger.release((await admitter.admit(other, model, 10, 10)).grant)
        await ledger.release((await admitter.admit(renamed, model, 10, 10)).grant)  # back, with full buckets
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_the_cache_size_is_a_validated_server_setting(tmp_path):
    from tollgate.config.load import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text("[server]\nkey_cache = 5000\n")
    assert load_config(path, env={}).server.key_cache == 5000
    for bad in ("0", '"many"'):
        path.write_text(f"[server]\nkey_cache = {bad}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path, env={})
        assert "server.key_cache" in str(info.value)
