"""Settlements and releases Redis did not take when they happened, retried until it answers.

During an outage a settlement's record and charge go to the store's durable path at
once (nothing a client was told is lost); what waits here is only the Redis side:
the spend counter's increment and the freeing of the hold. Each retry is the settle
script in its forced form, idempotent by grant id (its settled marker), so a retry
that had in fact landed before its answer was lost charges nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tollgate.domain.grants import Grant
from tollgate.ledger.redis.errors import UNREACHABLE

log = logging.getLogger("tollgate.ledger.redis")

Apply = Callable[[Grant, int], Awaitable[object]]


class SettleRetries:
    def __init__(self, apply: Apply, every: float) -> None:
        self.apply = apply  # (grant, charge) -> runs the forced settle script
        self.every = every
        self._pending: dict[str, tuple[Grant, int]] = {}
        self._task: asyncio.Task | None = None
        self.applied = 0  # retries that landed (for the metrics)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, grant: Grant, charge: int) -> None:
        self._pending[grant.id] = (grant, charge)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(self.every)
                await self.try_all()
        finally:
            self._task = None

    async def try_all(self) -> bool:
        """Apply what is pending, oldest first, until Redis fails again; whether all of it went."""
        for grant_id, (grant, charge) in list(self._pending.items()):
            try:
                await self.apply(grant, charge)
            except UNREACHABLE:
                return False
            except Exception:  # not an outage: retrying would not help, and must not loop forever
                log.exception("a settlement could not be applied in Redis; its charge is in the store")
            else:
                self.applied += 1
            self._pending.pop(grant_id, None)
        return True

    async def drain(self, timeout: float) -> None:
        """On close: give pending retries up to `timeout` seconds, then leave them (the store has their
        charges; their holds lapse at their deadlines)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._pending and loop.time() < deadline:
            if await self.try_all():
                break
            await asyncio.sleep(min(self.every, max(0.0, deadline - loop.time())))
        if self._pending:
            log.warning("%d settlements never reached Redis; their charges are in the store", len(self._pending))
        if self._task is not None:
            self._task.cancel()
            self._task = None
