"""Which client errors mean "Redis cannot serve the ledger now": the ones the failure policy turns into a 503.

Unreachable or too slow (connection refused or dropped, timeouts, a restarted server
still loading its data), and a server that answers but refuses writes: a replica after
a failover (READONLY) or one out of memory (OOM). A script error (a bug) is not among
them: it propagates.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

# BusyLoadingError (a restarted server still reading its append-only file) is a ConnectionError.
UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError,
                                                asyncio.TimeoutError, ReadOnlyError, OutOfMemoryError)
