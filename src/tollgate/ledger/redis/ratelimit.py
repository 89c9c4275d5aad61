"""Per-key rpm and tpm buckets in Redis, shared by every gateway instance, as calls of their own.

The gateway's admission does not call this: the Redis ledger takes the same buckets in
its reserve and settle scripts (RedisLedger.takes_rate, keys.bucket_key: one round trip
each instead of two). This standalone limiter, one script on one key per call
(rate_key), is kept for a ledger that does not fold them (the `SharedLimiter` protocol
of proxy/admission.py). The bucket semantics: buckets.py.

Redis not answering at admission is the same refusal as for the ledger
(LedgerUnavailable); a settlement or refund that cannot reach Redis is dropped with a
log line (the buckets refill within a minute anyway).
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from tollgate.domain.refusals import LedgerUnavailable, RateLimited
from tollgate.ledger.redis.buckets import BUCKETS
from tollgate.ledger.redis.errors import UNREACHABLE
from tollgate.ledger.redis.keys import rate_key
from tollgate.ledger.redis.lua import PRELUDE
from tollgate.ledger.redis.pipeline import AutoPipeline

log = logging.getLogger("tollgate.ledger.redis")

# ARGV: rpm, tpm, tokens. -> {'ok'} | {'rpm'|'tpm', seconds to wait}
ADMIT = PRELUDE + BUCKETS + r"""
local key, rpm, tpm, tokens = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = bucket_levels(key, now_ms(), rpm, tpm)
local refused = bucket_refusal(b, rpm, tpm, tokens)
if refused then return refused end
bucket_take(key, b, rpm, tpm, tokens)
return {'ok'}
"""

# ARGV: rpm, tpm, extra tokens. The token bucket refilled, then corrected (never above full).
SETTLE = PRELUDE + BUCKETS + r"""
bucket_correct(KEYS[1], now_ms(), tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"""

# ARGV: rpm, tpm, tokens. Gives back what ADMIT took (no refill, as the in-process refund).
REFUND = PRELUDE + BUCKETS + r"""
local key, rpm, tpm, tokens = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', key) == 0 then return 0 end
local v = redis.call('HMGET', key, 'r', 'rs', 't', 'ts')
bucket_keep(key, {math.min(rpm, tonumber(v[1]) + 1), tonumber(v[2]), math.min(tpm, tonumber(v[3]) + tokens),
                  tonumber(v[4])}, rpm, tpm)
return 1
"""


class RedisRateLimiter:
    """The per-key buckets of every instance, in one Redis (async: proxy/admission.py awaits it)."""

    def __init__(self, client: Redis, prefix: str, retry_after: float, pipe: AutoPipeline | None = None) -> None:
        self.client = client
        self.pipe = pipe or AutoPipeline(client)
        self.prefix = prefix
        self.retry_after = retry_after
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)
        self._refund = client.register_script(REFUND)

    async def admit(self, key_id: str, rpm: int, tpm: int, tokens: int) -> None:
        """Take one request and `tokens` input tokens, or raise RateLimited with the wait."""
        try:
            reply = await self.pipe.call(self._admit, [rate_key(self.prefix, key_id)], [rpm, tpm, tokens])
        except UNREACHABLE:
            raise LedgerUnavailable(self.retry_after) from None
        if reply[0] == b"rpm":
            raise RateLimited("rpm", rpm, float(reply[1]))
        if reply[0] == b"tpm":
            raise RateLimited("tpm", tpm, float(reply[1]))

    async def settle(self, key_id: str, tpm: int, extra_tokens: int) -> None:
        """Adjust the token bucket once the real usage is known."""
        if extra_tokens == 0:
            return
        await self._quietly(self._settle, key_id, [1, tpm, extra_tokens])  # (rpm unknown here: 1 is a floor)

    async def refund(self, key_id: str, rpm: int, tpm: int, tokens: int) -> None:
        """Give back what `admit` took, for a request refused later for another reason."""
        await self._quietly(self._refund, key_id, [rpm, tpm, tokens])

    async def _quietly(self, script, key_id: str, args: list) -> None:
        try:
            await self.pipe.call(script, [rate_key(self.prefix, key_id)], args)
        except UNREACHABLE as error:
            # Debug only: in an outage every request would log it, and the refusals are counted already.
            log.debug("a rate bucket correction did not reach Redis (%s)", type(error).__name__)
