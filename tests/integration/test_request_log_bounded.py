"""A request log page reads at most `SCAN_ROWS` records (store/request_log.py): over HTTP, a filter that matches
rarely answers a short page, even an empty one, with `hasMore` and the cursor where it stopped reading, and
walking on from there gives exactly the filter's requests, once, newest first (issue 15)."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import fake_config
from tollgate.domain.accounts import Account, ApiKey, ManagementKey
from tollgate.domain.secrets import CONSUMPTION_PREFIX, MANAGEMENT_PREFIX, display_prefix, hash_secret, new_secret
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.batch import LedgerBatch
from tollgate.store.request_log import SCAN_ROWS
from tollgate.store.sqlite import SQLiteStore

BUSY = SCAN_ROWS + 2_500  # answered requests of a common model, newer than every rare one


def record(n: int, at: float, model: str, status: int) -> UsageRecord:
    return UsageRecord(f"req_{n}", at, "acct_log", "key_log", None, model, None, None, "chat", status, 3, 4, 5 + n,
                       1.0, False, False)


def seed(path, now: float, busy: int = BUSY) -> tuple[str, str]:
    """The account, a management key and a key, 3 old requests of a rare model, then `busy` common ones; the
    secrets (tests/browser/test_dashboard_log.py seeds its gateway so too)."""
    mk, sk = new_secret(MANAGEMENT_PREFIX), new_secret(CONSUMPTION_PREFIX)

    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        try:
            await store.create_account(Account("acct_log", "log", int(now) - 9000))
            await store.create_management_key(ManagementKey("mkey_log", "acct_log", "owner", display_prefix(mk),
                                                            int(now) - 9000), hash_secret(mk))
            await store.create_api_key(ApiKey("key_log", "acct_log", "credit", "busy", display_prefix(sk),
                                              int(now) - 9000), hash_secret(sk))
            rare = [record(n, now - 8000 + n, "rare", (200, 502, 429)[n]) for n in range(3)]
            common = [record(3 + n, now - 7000 + n * 0.1, "common", 200) for n in range(busy)]
            await store.write_ledger(LedgerBatch(rare + common, [], [], []))
            await store.usage_total("acct_log", None, 0)  # the journal's batches are in the database
        finally:
            await store.close()

    asyncio.run(main())
    return mk, sk


def walk(gw, path: str, token: str, limit: int = 50, **filters) -> tuple[list[dict], list[int]]:
    """Every row through `nextCursor` (bounded); (rows, the size of each page)."""
    rows, sizes, before = [], [], None
    for _ in range(100):
        params = {**filters, "limit": limit, **({"before": before} if before else {})}
        page = httpx.get(gw.url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert page.status_code == 200, page.text
        body = page.json()
        rows += body["data"]
        sizes.append(len(body["data"]))
        if not body["hasMore"]:
            assert body["nextCursor"] is None
            return rows, sizes
        before = body["nextCursor"]
    raise AssertionError("the log never ended")


def test_a_rare_filter_answers_short_pages_that_walk_on_to_every_match(tmp_path, gateway_factory, fake_upstream):
    mk, sk = seed(tmp_path / "tollgate.db", time.time())
    gw = gateway_factory(fake_config(fake_upstream.url))
    rows, sizes = walk(gw, "/api/requests", mk, model="rare")
    assert [r["requestId"] for r in rows] == ["req_2", "req_1", "req_0"]
    assert sizes[0] == 0 and len(sizes) > 1  # the first page read its bound of common requests, and said so
    refusals, _ = walk(gw, "/v1/requests", sk, status="4xx")  # on the account's refusals: one page
    assert [r["requestId"] for r in refusals] == ["req_2"]
    failures, sizes = walk(gw, "/admin/requests", gw.admin_token, status="5xx")  # every account, in id order
    assert [r["requestId"] for r in failures] == ["req_1"] and sizes[0] == 0
    everything, sizes = walk(gw, "/api/requests", mk, 500)  # no filter thins the walk: full pages only
    assert len(everything) == BUSY + 3 and all(size == 500 for size in sizes[:-1])
