"""A bounded map that forgets a least recently used entry, and counts what it does.

Per-key state (a key's context, its pools and limits) is cached for every key that sends
requests; with a provider's hundreds of thousands of keys the cache must have a ceiling, and
whoever sizes it needs to see whether it is large enough (hits, misses, evictions). No I/O.

Recency is kept by halves, not exactly: a hit moves its entry to the young end only when the
entry has fallen into the older half (more than `capacity // 2` entries were put or moved behind
it since it was). An exact LRU moved the entry on every hit, and with a hundred thousand keys in
use that move (unlinking it between two neighbours that are nowhere else in the processor's
caches) cost a request about as much as the lookup itself (bench/many_keys.py, issue 18). What is
given up is little: an entry used while at least `capacity // 2` others were not is never the
one forgotten (an exact LRU: `capacity`), and with fewer keys in use than that, nothing moves.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheStats:
    size: int
    capacity: int
    hits: int
    misses: int
    evictions: int  # entries pushed out by newer ones (not invalidations)
    invalidations: int  # entries dropped because what they hold changed

    def as_dict(self) -> dict[str, int]:
        return {"size": self.size, "capacity": self.capacity, "hits": self.hits, "misses": self.misses,
                "evictions": self.evictions, "invalidations": self.invalidations}


class LRU(Generic[K, V]):
    """At most `capacity` entries; `on_evict(key, value)` hears of every entry that leaves but by `clear`."""

    def __init__(self, capacity: int, on_evict: Callable[[K, V], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError("an LRU needs room for at least one entry")
        self.capacity = capacity
        self._on_evict = on_evict
        # Each value with the tick at which its entry last reached the young end; a tick per arrival there.
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._tick = 0
        self._young = capacity // 2  # an entry fewer arrivals than this from the young end stays where it is
        self.hits = self.misses = self.evictions = self.invalidations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value (its entry now among the young half), counted as a hit; None, counted as a miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        if self._tick - entry[1] >= self._young:
            self._tick += 1
            self._entries[key] = (entry[0], self._tick)
            self._entries.move_to_end(key)
        return entry[0]

    def peek(self, key: K) -> V | None:
        """The value, without counting or refreshing it."""
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def put(self, key: K, value: V) -> None:
        """Store `value` at the young end; the entry at the old end goes beyond capacity."""
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None and self._on_evict is not None:
            self._on_evict(key, old[0])
        self._tick += 1
        entries[key] = (value, self._tick)
        while len(entries) > self.capacity:
            gone_key, gone = entries.popitem(last=False)
            self.evictions += 1
            if self._on_evict is not None:
                self._on_evict(gone_key, gone[0])

    def invalidate(self, key: K) -> V | None:
        """Drop the entry because it is out of date; the value it held, or None."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.invalidations += 1
        if self._on_evict is not None:
            self._on_evict(key, entry[0])
        return entry[0]

    def recent(self, n: int) -> list[tuple[K, V]]:
        """The `n` entries nearest the young end, youngest first (without counting or refreshing them): the
        most recently used, within the halves recency is kept by."""
        out: list[tuple[K, V]] = []
        for key in reversed(self._entries):
            if len(out) >= n:
                break
            out.append((key, self._entries[key][0]))
        return out

    def clear(self) -> None:
        """Forget every entry (counted as invalidations; `on_evict` is not called: the caller resets its own)."""
        self.invalidations += len(self._entries)
        self._entries.clear()

    def stats(self) -> CacheStats:
        return CacheStats(len(self._entries), self.capacity, self.hits, self.misses, self.evictions, self.invalidations)
