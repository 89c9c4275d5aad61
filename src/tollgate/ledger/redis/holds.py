"""The holds of this process's requests in flight, kept alive by renewing their deadlines.

A hold's deadline is a few seconds ahead on the Redis server's clock. While its request
runs (a long stream may take minutes), this process moves the deadline on every
`renew_every` seconds: one script call per account, all of them in one pipeline. When
the process dies or stalls, nobody renews its holds, and the next script that touches
their pools frees them: a dead instance's holds free themselves with no sweeper.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from tollgate.ledger.redis.errors import UNREACHABLE

log = logging.getLogger("tollgate.ledger.redis")


class LiveHolds:
    def __init__(self, client: Redis, renew: AsyncScript, hold_ms: int, every: float,
                 max_age: float = float("inf")) -> None:
        self.client = client
        self.renew_script = renew
        self.hold_ms = hold_ms
        self.every = every
        self.max_age = max_age
        # grant id -> (hash tag, the deadline set of each of its slots, when it was taken (monotonic))
        self._grants: dict[str, tuple[str, tuple[str, ...], float]] = {}
        self.renewals_failed = 0
        self._task: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._grants)

    def add(self, grant_id: str, tag: str, deadline_keys: tuple[str, ...]) -> None:
        self._grants[grant_id] = (tag, deadline_keys, time.monotonic())

    def discard(self, grant_id: str) -> bool:
        """Stop renewing a grant (it settles or is released); whether it was live here."""
        return self._grants.pop(grant_id, None) is not None

    async def renew_once(self) -> int:
        """Move every live hold's deadline on; how many holds were still there to renew."""
        by_tag: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        oldest = time.monotonic() - self.max_age
        for grant_id, (tag, deadline_keys, taken) in list(self._grants.items()):
            if taken < oldest:
                continue  # past the longest a request may hold: left to lapse (its settle still works)
            keys, ids = by_tag[tag]
            for key in deadline_keys:
                keys.append(key)
                ids.append(grant_id)
        if not by_tag:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for keys, ids in by_tag.values():
            await self.renew_script(keys=keys, args=[self.hold_ms, *ids], client=pipe)
        kept = await pipe.execute()
        return sum(int(k) for k in kept)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.renew_once()
                if failing:
                    log.warning("renewing reservations in Redis works again")
                failing = False
            except UNREACHABLE as error:
                self.renewals_failed += 1
                if not failing:  # one line per outage, not one per tick
                    log.warning("cannot renew reservations in Redis (%s); holds lapse after their deadline",
                                type(error).__name__)
                failing = True
            except Exception:
                self.renewals_failed += 1
                log.exception("renewing reservations in Redis failed")
