"""The embedded ledger's invariants, over random sequences of reserve / settle / release / time passing.

A real SQLite store in a temporary folder and the real ledger; only the clock is fake.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollgate.domain.pools import Pool
from tollgate.domain.refusals import BudgetExhausted
from tollgate.domain.usage import UsageRecord
from tollgate.domain.windows import window_start
from tollgate.ledger.embedded import EmbeddedLedger
from tollgate.ledger.writer import LedgerWriter
from tollgate.store.sqlite import SQLiteStore


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record() -> UsageRecord:
    return UsageRecord("r", 0.0, "acct", "key", None, "m", None, None, "chat", 200, 1, 1, 0, 1.0, False, False)


async def open_ledger(folder: Path, clock: Clock, *, ttl: float = 30, wait: float = 0,
                      store: SQLiteStore | None = None) -> tuple[SQLiteStore, EmbeddedLedger]:
    """A real store in `folder` (or the one given) and a started ledger on it."""
    if store is None:
        store = SQLiteStore(f"sqlite:///{folder / 'ledger.db'}")
        await store.open()
    ledger = EmbeddedLedger(store, LedgerWriter(store), reservation_ttl=ttl, admission_wait=wait, clock=clock)
    await ledger.start()
    return store, ledger


POOLS = (Pool("sub:a", "subscription", 1_000, 10), Pool("key:k", "key", 600, 4))

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 700), st.integers(0, 300), st.booleans()),
        st.tuples(st.just("settle"), st.integers(0, 20), st.integers(0, 900)),
        st.tuples(st.just("release"), st.integers(0, 20)),
        st.tuples(st.just("tick"), st.floats(0.0, 6.0)),
    ),
    max_size=60,
)


async def run(ops, folder: Path) -> None:
    clock = Clock(1_000_000.0)
    store, ledger = await open_ledger(folder, clock, ttl=60)
    open_grants = []
    charged: dict[tuple[str, int], int] = {}
    for op in ops:
        if op[0] == "reserve":
            _, want, minimum, both = op
            pools = POOLS if both else POOLS[:1]
            minimum = min(minimum, want)
            before = [await ledger.read(p) for p in pools]
            try:
                grant = await ledger.reserve(pools, want, minimum)
            except BudgetExhausted as exc:
                # Refused only when some pool truly lacks room for the minimum.
                assert any(s.pool.limit - s.spent - s.reserved < minimum for s in before)
                assert exc.pool in pools
                continue
            assert minimum <= grant.amount <= want
            # Granted exactly as much as fits (no less): the tightest pool's room, or what was asked.
            assert grant.amount == min(want, min(s.pool.limit - s.spent - s.reserved for s in before))
            open_grants.append(grant)
        elif op[0] in ("settle", "release") and open_grants:
            grant = open_grants.pop(op[1] % len(open_grants))
            if op[0] == "settle":
                settled = await ledger.settle(grant, op[2], record())
                assert settled.charged == min(op[2], grant.amount)  # never more than reserved
                for pool, start in grant.charges:
                    charged[(pool.id, start)] = charged.get((pool.id, start), 0) + settled.charged
            else:
                await ledger.release(grant)
        elif op[0] == "tick":
            clock.now += op[1]
        # The invariant: in every pool's current window, settled + reserved never exceeds the limit.
        for pool in POOLS:
            state = await ledger.read(pool)
            assert 0 <= state.spent + state.reserved <= pool.limit
    for grant in open_grants:
        await ledger.release(grant)
    assert ledger.open_reservations() == 0
    await ledger.close()
    # Everything charged is durable, per pool and window, to the nano.
    for (pool_id, start), amount in charged.items():
        assert await store.read_spend(pool_id, start) == amount
    assert await store.load_reservations() == []
    await store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_reserved_plus_settled_never_exceeds_the_limit_and_every_reservation_ends(ops):
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(ops, Path(folder)))


def test_orphaned_reservations_hold_budget_until_their_ttl_then_free_it(tmp_path):
    async def main():
        clock = Clock(2_000_000.0)
        pool = Pool("sub:x", "subscription", 1_000, 3600)
        store, first = await open_ledger(tmp_path, clock)
        await first.reserve([pool], 800, 800)
        await first.writer.commit()  # the reservation reached the disk; then the process "dies"
        _, second = await open_ledger(tmp_path, clock, store=store)
        with pytest.raises(BudgetExhausted):
            await second.reserve([pool], 500, 500)  # still held: its owner may have spent it
        clock.now += 31
        assert await second.expire() == 1
        grant = await second.reserve([pool], 500, 500)
        assert grant.amount == 500
        await second.release(grant)
        await second.close()
        assert await store.load_reservations() == []
        await store.close()

    asyncio.run(main())


def test_a_waiting_request_is_admitted_when_a_reservation_settles(tmp_path):
    async def main():
        clock = Clock(3_000_000.0)
        pool = Pool("sub:w", "subscription", 1_000, 3600)
        store, ledger = await open_ledger(tmp_path, clock, wait=5)
        first = await ledger.reserve([pool], 1_000, 100)
        waiting = asyncio.ensure_future(ledger.reserve([pool], 300, 100))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # held back by the reservation, not refused
        await ledger.settle(first, 400, record())
        second = await asyncio.wait_for(waiting, 2)
        assert second.amount == 300
        await ledger.release(second)
        await ledger.close()
        await store.close()

    asyncio.run(main())


def test_window_rollover_gives_a_fresh_budget(tmp_path):
    async def main():
        clock = Clock(4_000_000.0)
        pool = Pool("sub:r", "subscription", 1_000, 10)
        store, ledger = await open_ledger(tmp_path, clock)
        grant = await ledger.reserve([pool], 1_000, 1_000)
        await ledger.settle(grant, 1_000, record())
        with pytest.raises(BudgetExhausted) as info:
            await ledger.reserve([pool], 1, 1)
        assert info.value.resets_at == window_start(clock.now, 10) + 10
        clock.now = info.value.resets_at
        assert (await ledger.reserve([pool], 1, 1)).amount == 1
        await ledger.close()
        await store.close()

    asyncio.run(main())
