"""The request path's per-key caches, as the operator sees them (`/admin/metrics/caches`; `/metrics`:
http/prometheus.py `CacheCollector`).

Whether `[server] key_cache` is large enough shows here: with every active key cached, misses
stop growing once each key was seen, evictions stay at zero, and the key cache's store reads
and change-log reads follow key changes, not requests.
"""

from __future__ import annotations

from tollgate.accounts.auth import ConsumptionAuth
from tollgate.http.series_cache import SeriesCache
from tollgate.proxy.admission import Admitter

COUNTERS = ("hits", "misses", "evictions", "invalidations", "store_reads", "keys_read", "change_reads", "resets")


class CacheMetrics:
    def __init__(self, auth: ConsumptionAuth, admitter: Admitter, series: SeriesCache | None = None) -> None:
        self.auth = auth
        self.admitter = admitter
        self.series = series

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Per cache: size, capacity and counts since the gateway started."""
        caches = {"key_contexts": self.auth.stats(), "key_limits": self.admitter.cache_stats().as_dict()}
        if self.series is not None:
            caches["usage_series"] = self.series.stats()  # size and capacity in points, not entries
        return caches
