"""The final buckets of usage series, kept in memory: an owner's 7-day chart asks the store for its live tail only.

Why: opening an owner's dashboard reads three 7-day hourly charts; the per-key one is thousands of
points, and reading and folding them costs tens of milliseconds of the database thread on every
load and every "Refresh", though all but the last hour or two of them can no longer change.

When a bucket is final: a usage record is dated at its request's start (`proxy/flow.py`
`created_at=ex.started`), a request lives at most `[server] reservation_ttl` seconds (the config
holds it to at least every upstream's timeout), and a settled record reaches the store within the
ledger's backlog bound (`[ledger] backlog_seconds`; a store read first writes what is journaled). So
the bucket [start, start + size) can no longer change once `start + size <= now - late - MARGIN`, where
`late` is those two bounds added (serve/app.py) and MARGIN a minute more. Only such buckets are kept,
per (account, grouping, bucket size, key filter, bucket start), with their points in the store's order
and the names of their keys; an empty bucket is kept too (as empty). A series is then the cached
buckets, and the store's answers for the rest: the final buckets missing from the cache, the live tail, and
a partial bucket at either end of the range, in at most MAX_READS contiguous ranges.

How stale it may be: an entry is forgotten `ttl` seconds after it was read (default five minutes),
so a renamed key shows its new name, and a record that reaches the store later than the bounds above
(a journal replayed after a crash, a request that outlived its reservation) shows, within `ttl`.
The cache holds at most `max_points` points (an empty bucket counts one), the least recently used
buckets going first. One per process (built by the usage series API), never shared.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tollgate.store.base import Store
from tollgate.store.usage_queries import hour_ceil, hour_floor
from tollgate.store.usage_series import SeriesPoint, UsageSeries

MARGIN = 60.0  # seconds beyond the bounds of a request's life and of the ledger's backlog
TTL = 300.0
MAX_POINTS = 200_000  # about 200 bytes each: some 40 MB at most
YIELD_EVERY = 512  # points split into buckets between two yields to the event loop
MAX_READS = 4  # store reads for one series; more gaps than that are read as one range

# (account id, group by, bucket size, key filter, bucket start)
BucketKey = tuple[str, str | None, int, str | None, int]


@dataclass(frozen=True, slots=True)
class _Bucket:
    expires_at: float
    points: tuple[SeriesPoint, ...]  # shared with the answers: never mutated
    names: dict[str, str]  # names of the keys in `points` (group by key)


class SeriesCache:
    """`Store.usage_series`, with the final buckets served from memory (see the module docstring)."""

    def __init__(self, store: Store, clock: Callable[[], float], late: float, max_points: int = MAX_POINTS,
                 ttl: float = TTL) -> None:
        if max_points < 1:
            raise ValueError("a series cache needs room for at least one point")
        self.store = store
        self.clock = clock
        self.final_after = late + MARGIN
        self.max_points = max_points
        self.ttl = ttl
        self._buckets: OrderedDict[BucketKey, _Bucket] = OrderedDict()
        self._points = 0
        self.hits = self.misses = self.evictions = self.expired = self.store_reads = 0

    async def usage_series(self, account_id: str, since: float, until: float, group_by: str | None, bucket: int,
                           key_id: str | None = None) -> UsageSeries:
        """What `store.usage_series` answers with the same arguments, point for point."""
        now = self.clock()
        first, end = hour_floor(since), hour_ceil(until)
        lo = -(-first // bucket) * bucket  # the first whole bucket in the range ...
        hi = min(end - end % bucket, int((now - self.final_after) // bucket) * bucket)  # ... and past the last final one
        if lo >= hi:
            self.store_reads += 1
            return await self.store.usage_series(account_id, since, until, group_by, bucket, key_id)
        cached: dict[int, _Bucket] = {}
        missing: list[int] = []
        for start in range(lo, hi, bucket):
            found = self._get((account_id, group_by, bucket, key_id, start), now)
            if found is None:
                missing.append(start)
            else:
                cached[start] = found
        reads = _ranges(first, lo, missing, bucket, hi, end)
        if len(reads) > MAX_READS:  # gaps all over (buckets evicted here and there): one read is cheaper
            reads = [(reads[0][0], reads[-1][1])]
            cached = {start: e for start, e in cached.items() if not reads[0][0] <= start < reads[0][1]}
        pieces: list[tuple[int, Sequence[SeriesPoint]]] = [(start, e.points) for start, e in cached.items()]
        names: dict[str, str] = {}
        for entry in cached.values():
            names.update(entry.names)
        for a, b in reads:
            self.store_reads += 1
            read = await self.store.usage_series(account_id, a, b, group_by, bucket, key_id)
            pieces.append((a, read.points))
            names.update(read.key_names)  # read after the cached ones: the newest name wins
            keep = missing[bisect_left(missing, a):bisect_left(missing, b)]
            await self._keep((account_id, group_by, bucket, key_id), keep, read, now)
        pieces.sort(key=lambda piece: piece[0])  # disjoint ranges of time
        series = UsageSeries(key_names=names)
        for _, points in pieces:
            series.points.extend(points)
        return series

    async def _keep(self, series_key: tuple[str, str | None, int, str | None], starts: list[int], read: UsageSeries,
                    now: float) -> None:
        """Cache the buckets `starts` (final, missing) of a store's answer `read`, empty ones too."""
        if not starts:
            return
        split: dict[int, list[SeriesPoint]] = {start: [] for start in starts}
        for at, point in enumerate(read.points):
            points = split.get(point.start)
            if points is not None:
                points.append(point)
            if at % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        names = read.key_names
        for start, points in split.items():
            own = {str(p.group): names[str(p.group)] for p in points if str(p.group) in names} if names else {}
            self._put((*series_key, start), _Bucket(now + self.ttl, tuple(points), own))

    def _get(self, key: BucketKey, now: float) -> _Bucket | None:
        found = self._buckets.get(key)
        if found is not None and found.expires_at <= now:
            self._drop(key)
            self.expired += 1
            found = None
        if found is None:
            self.misses += 1
            return None
        self._buckets.move_to_end(key)
        self.hits += 1
        return found

    def _put(self, key: BucketKey, value: _Bucket) -> None:
        if key in self._buckets:
            self._drop(key)
        self._buckets[key] = value
        self._points += _size(value)
        while self._points > self.max_points and self._buckets:
            _, gone = self._buckets.popitem(last=False)
            self._points -= _size(gone)
            self.evictions += 1

    def _drop(self, key: BucketKey) -> None:
        self._points -= _size(self._buckets.pop(key))

    def stats(self) -> dict[str, int]:
        """Points held (`size`) and their ceiling, buckets held, and counts of buckets since start-up."""
        return {"size": self._points, "capacity": self.max_points, "buckets": len(self._buckets), "hits": self.hits,
                "misses": self.misses, "evictions": self.evictions, "expired": self.expired,
                "store_reads": self.store_reads}


def _size(bucket: _Bucket) -> int:
    return max(1, len(bucket.points))


def _ranges(first: int, lo: int, missing: list[int], bucket: int, hi: int, end: int) -> list[tuple[int, int]]:
    """The ranges to ask the store for, oldest first, adjacent ones merged: the partial bucket before `lo`, each
    missing final bucket, and everything from `hi` (the live tail, a partial last bucket)."""
    wanted = ([(first, lo)] if first < lo else []) + [(s, s + bucket) for s in missing] + \
        ([(hi, end)] if hi < end else [])
    merged: list[tuple[int, int]] = []
    for a, b in wanted:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged
