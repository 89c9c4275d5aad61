"""A bounded map that forgets the least recently used entry, and counts what it does.

Per-key state (a key's context, its pools and limits) is cached for every key that sends
requests; with a provider's hundreds of thousands of keys the cache must have a ceiling, and
whoever sizes it needs to see whether it is large enough (hits, misses, evictions). No I/O.
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
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.hits = self.misses = self.evictions = self.invalidations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value (now the most recently used), counted as a hit; None, counted as a miss."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def peek(self, key: K) -> V | None:
        """The value, without counting or refreshing it."""
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        """Store `value` as the most recently used; the least recently used goes beyond capacity."""
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None and self._on_evict is not None:
            self._on_evict(key, old)
        entries[key] = value
        while len(entries) > self.capacity:
            gone_key, gone = entries.popitem(last=False)
            self.evictions += 1
            if self._on_evict is not None:
                self._on_evict(gone_key, gone)

    def invalidate(self, key: K) -> V | None:
        """Drop the entry because it is out of date; the value it held, or None."""
        value = self._entries.pop(key, None)
        if value is not None:
            self.invalidations += 1
            if self._on_evict is not None:
                self._on_evict(key, value)
        return value

    def recent(self, n: int) -> list[tuple[K, V]]:
        """The `n` most recently used entries, newest first (without counting or refreshing them)."""
        out: list[tuple[K, V]] = []
        for key in reversed(self._entries):
            if len(out) >= n:
                break
            out.append((key, self._entries[key]))
        return out

    def clear(self) -> None:
        """Forget every entry (counted as invalidations; `on_evict` is not called: the caller resets its own)."""
        self.invalidations += len(self._entries)
        self._entries.clear()

    def stats(self) -> CacheStats:
        return CacheStats(len(self._entries), self.capacity, self.hits, self.misses, self.evictions, self.invalidations)
