"""The per-key rpm and tpm buckets as Lua functions, shared by the ledger's scripts and the limiter's.

The semantics of the in-process limiter (ledger/ratelimit.py), on the Redis server's
clock: each bucket refills over a minute from its own stamp; tpm takes the input bound
at admission and is corrected at settlement, so it may go below zero after a long
answer; a request larger than the whole bucket is admitted when the bucket is full.
One hash per API key holds both buckets (`r`, `rs`, `t`, `ts`: levels and stamps); a
missing hash is two full buckets. Token counts are not money: Lua numbers (doubles)
hold them exactly enough.

Refilling is linear and capped, so refilling in two steps gives what one step gives:
a refusal need not write the refilled levels back, and does not.

Needs the ledger prelude's `now_ms` (lua.py) only through its callers: each function
takes `now` (server ms).
"""

from __future__ import annotations

BUCKETS = r"""
local function refill(lvl, stamp, cap, now)
  if now > stamp then return math.min(cap, lvl + (now - stamp) * cap / 60000), now end
  return lvl, stamp
end
-- {r, rs, t, ts}: both buckets refilled to `now` (a missing hash: both full).
local function bucket_levels(key, now, rpm, tpm)
  local v = redis.call('HMGET', key, 'r', 'rs', 't', 'ts')
  if not v[1] then return {rpm, now, tpm, now} end
  local r, rs = refill(tonumber(v[1]), tonumber(v[2]), rpm, now)
  local t, ts = refill(tonumber(v[3]), tonumber(v[4]), tpm, now)
  return {r, rs, t, ts}
end
local function bucket_keep(key, b, rpm, tpm)
  redis.call('HSET', key, 'r', tostring(b[1]), 'rs', b[2], 't', tostring(b[3]), 'ts', b[4])
  -- Kept until both buckets are full again (a missing bucket is a full one), plus a minute.
  local empty = math.max((rpm - b[1]) / rpm, (tpm - b[3]) / tpm, 0)
  redis.call('PEXPIRE', key, math.ceil(empty * 60000) + 60000)
end
-- nil when one request and `tokens` fit, else {'rpm'|'tpm', seconds to wait}.
local function bucket_refusal(b, rpm, tpm, tokens)
  if b[1] < 1 then return {'rpm', tostring((1 - b[1]) * 60 / rpm)} end
  local needed = math.min(tokens, tpm)
  if b[3] < needed then return {'tpm', tostring((needed - b[3]) * 60 / tpm)} end
  return nil
end
local function bucket_take(key, b, rpm, tpm, tokens)
  b[1], b[3] = b[1] - 1, b[3] - tokens
  bucket_keep(key, b, rpm, tpm)
end
-- The token bucket refilled, then corrected by `extra` (never above full); the request bucket as it is.
-- A missing hash (two full buckets, or expired since) is left alone.
local function bucket_correct(key, now, rpm, tpm, extra)
  local v = redis.call('HMGET', key, 'r', 'rs', 't', 'ts')
  if not v[1] then return end
  local t, ts = refill(tonumber(v[3]), tonumber(v[4]), tpm, now)
  bucket_keep(key, {tonumber(v[1]), tonumber(v[2]), math.min(tpm, t - extra), ts}, rpm, tpm)
end
"""
