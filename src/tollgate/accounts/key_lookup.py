"""Cache misses, read from the store in batches, each key at most once at a time.

A key that is not cached costs a read on the database thread. When many keys miss at once
(a cold start, a hundred thousand keys in rotation), one read per key would queue behind each
other and wake the event loop once each; here the keys that miss while a read runs wait for
the next one, which reads them all in one query. Requests for a key that is already being
read share that read, as long as it is recent enough for them (`since`): a request that has
seen a change to the key must not be answered by a read that began before the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import islice

from tollgate.domain.accounts import KeyContext
from tollgate.domain.secrets import hash_secret
from tollgate.store.base import Store

# Keys per read: one query's worth of parameters, well inside SQLite's limit.
MAX_BATCH = 500

Found = tuple[KeyContext | None, int]  # the context (None: no such key), and the change seq it is at least as new as


class KeyLookups:
    def __init__(self, store: Store, hash_key: Callable[[str], str] = hash_secret) -> None:
        self.store = store
        self.hash_key = hash_key
        self._next: dict[str, asyncio.Future[Found]] = {}  # waiting for the next read
        self._reading: dict[str, tuple[int, asyncio.Future[Found]]] = {}  # in the read under way, with its seq
        self._task: asyncio.Task | None = None
        self.reads = 0  # store reads
        self.keys_read = 0  # keys asked for, over all reads

    def find(self, secret: str, since: int) -> asyncio.Future[Found]:
        """The context of `secret`, from a read that sees at least every change up to `since`.

        Await it through `asyncio.shield`: other requests may be waiting on the same future.
        """
        waiting = self._next.get(secret)
        if waiting is not None:
            return waiting
        reading = self._reading.get(secret)
        if reading is not None and reading[0] >= since:
            return reading[1]
        future: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        self._next[secret] = future
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self._next:
                batch = dict(islice(self._next.items(), MAX_BATCH))
                for secret in batch:
                    del self._next[secret]
                # The counter is published after each commit: the read below sees at least this much.
                seq = self.store.change_seq()
                self._reading = {secret: (seq, future) for secret, future in batch.items()}
                hashes = {secret: self.hash_key(secret) for secret in batch}
                self.reads += 1
                self.keys_read += len(batch)
                try:
                    found = await self.store.find_key_contexts(list(hashes.values()))
                except Exception as exc:  # every waiter hears of it; the next miss tries again
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                finally:
                    self._reading = {}
                for secret, future in batch.items():
                    if not future.done():
                        future.set_result((found.get(hashes[secret]), seq))
        finally:
            self._task = None
