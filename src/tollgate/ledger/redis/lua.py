"""The ledger's server-side scripts: reserve, settle (and release), renew, sweep, read.

Each runs atomically on the Redis server over the keys of one account (keys.py), so
a request's pools are checked and charged together, and the deadlines are read from
the server's clock (`TIME`), never an instance's.

Money is never a Lua number. Lua 5.1's numbers are doubles, exact only up to 2**53
nano-dollars (about $9M), and a counter may hold any 64-bit value: amounts travel as
decimal strings, and the few sums and comparisons a script needs are done on two
exact limbs (value = hi * 10**9 + lo, each limb well under 2**53), then written back
as strings with INCRBY/DECRBY, which Redis does in 64-bit integers. Scores (deadlines
in ms, about 1.8e12) and counts are plain numbers: far below 2**53.
"""

from __future__ import annotations

from tollgate.ledger.redis.buckets import BUCKETS

# Limb arithmetic on non-negative decimal integers (up to 2**63), plus the hold helpers.
PRELUDE = r"""
local B = 1000000000
local function big(s)
  s = s or '0'
  if string.sub(s, 1, 1) == '-' then return {0, 0} end
  local n = #s
  if n <= 9 then return {0, tonumber(s)} end
  return {tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))}
end
local function add(a, b)
  local lo = a[2] + b[2]
  if lo >= B then return {a[1] + b[1] + 1, lo - B} end
  return {a[1] + b[1], lo}
end
local function cmp(a, b)
  if a[1] ~= b[1] then if a[1] < b[1] then return -1 else return 1 end end
  if a[2] ~= b[2] then if a[2] < b[2] then return -1 else return 1 end end
  return 0
end
-- a - b, or zero when b >= a
local function over(a, b)
  if cmp(a, b) <= 0 then return {0, 0} end
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then return {hi - 1, lo + B} end
  return {hi, lo}
end
local function least(a, b)
  if cmp(a, b) <= 0 then return a end
  return b
end
local function str(a)
  if a[1] == 0 then return string.format('%d', a[2]) end
  return string.format('%d%09d', a[1], a[2])
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Spend and reserved of every slot (KEYS in fours: s, r, z, h), in one call: {s1, r1, s2, r2, ...}.
local function counters(n)
  local names = {}
  for i = 1, n do
    names[2 * i - 1] = KEYS[4 * i - 3]
    names[2 * i] = KEYS[4 * i - 2]
  end
  return redis.call('MGET', unpack(names))
end
-- Free the holds of one slot whose deadline passed (at most 100 a call: the work of a script stays bounded).
local function free_expired(r, z, h, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(gone) do
    local amount = redis.call('HGET', h, id)
    if amount then
      redis.call('DECRBY', r, amount)
      redis.call('HDEL', h, id)
    end
    redis.call('ZREM', z, id)
  end
  return #gone
end
"""

# KEYS: per pool s, r, z, h, then (optional) the API key's rate buckets. ARGV: grant id, want, minimum,
# hold ms, then each pool's limit and the expiry of its window's keys (unix ms; '0': none), which a new
# deadline set and amount hash get when created, then (with the buckets) rpm, tpm, tokens.
# The buckets are taken only with the hold: a rate refusal holds nothing, a budget refusal takes nothing.
# -> {'ok', amount, spent1, reserved1, ...} | {'load', i} | {'full', i} | {'wait', i} | {'rpm'|'tpm', wait}
RESERVE = PRELUDE + BUCKETS + r"""
local n = math.floor(#KEYS / 4)
local c = counters(n)
for i = 1, n do
  if not c[2 * i - 1] then return {'load', i} end
end
-- Run twice (the client retried a call whose answer was lost): the hold is there already.
local prior = redis.call('HGET', KEYS[4], ARGV[1])
if prior then
  local out = {'ok', prior}
  for i = 1, n do
    out[#out + 1] = c[2 * i - 1]
    out[#out + 1] = c[2 * i] or '0'
  end
  return out
end
local now = now_ms()
local bk, b, rpm, tpm, tokens = KEYS[4 * n + 1], nil, 0, 0, 0
if bk then
  rpm, tpm, tokens = tonumber(ARGV[5 + 2 * n]), tonumber(ARGV[6 + 2 * n]), tonumber(ARGV[7 + 2 * n])
  b = bucket_levels(bk, now, rpm, tpm)
  local refused = bucket_refusal(b, rpm, tpm, tokens)
  if refused then return refused end
end
local want, minimum = big(ARGV[2]), big(ARGV[3])
local spent, reserved, room, binding = {}, {}, nil, 1
for i = 1, n do
  local r = KEYS[4 * i - 2]
  spent[i] = big(c[2 * i - 1])
  if free_expired(r, KEYS[4 * i - 1], KEYS[4 * i], now) > 0 then
    reserved[i] = big(redis.call('GET', r))
  else
    reserved[i] = big(c[2 * i])
  end
  local left = over(big(ARGV[3 + 2 * i]), add(spent[i], reserved[i]))
  if room == nil or cmp(left, room) < 0 then room, binding = left, i end
end
if cmp(room, minimum) >= 0 then
  local amount = str(least(want, room))
  local id, deadline = ARGV[1], now + tonumber(ARGV[4])
  local out = {'ok', amount}
  for i = 1, n do
    local z, h, expiry = KEYS[4 * i - 1], KEYS[4 * i], ARGV[4 + 2 * i]
    redis.call('INCRBY', KEYS[4 * i - 2], amount)
    redis.call('ZADD', z, deadline, id)
    redis.call('HSET', h, id, amount)
    if expiry ~= '0' and redis.call('HLEN', h) == 1 then
      redis.call('PEXPIREAT', z, expiry)
      redis.call('PEXPIREAT', h, expiry)
    end
    out[#out + 1] = str(spent[i])
    out[#out + 1] = str(add(reserved[i], big(amount)))
  end
  if bk then bucket_take(bk, b, rpm, tpm, tokens) end
  return out
end
for i = 1, n do
  if cmp(add(spent[i], minimum), big(ARGV[3 + 2 * i])) > 0 then return {'full', i} end
end
return {'wait', binding}
"""

# KEYS: per pool s, r, z, h, then the settled marker, then (optional) the API key's rate buckets.
# ARGV: grant id, cost, force, marker ttl ms, limits, then (with the buckets) rpm, tpm, token correction,
# which is applied with the settlement, so once per grant as well.
# Frees the grant's holds and charges `cost` (already at most the grant) on every pool, once per grant id.
# A hold that expired and was freed before this settle charges at most what still fits beside the open
# holds, so spend never passes a limit. `force` = '1': the cost is in the store already (a settle retried
# after an outage, or a release with cost 0): charge it exactly, and skip a counter Redis lost (it will be
# rebuilt from the store, which has it).
# -> {'ok', charged, spent1, reserved1, ...} | {'dup', charged} | {'load', i}
SETTLE = PRELUDE + BUCKETS + r"""
local n = math.floor((#KEYS - 1) / 4)
local marker, bk = KEYS[4 * n + 1], KEYS[4 * n + 2]
local done = redis.call('GET', marker)
if done then return {'dup', done} end
local force = ARGV[3] == '1'
local c = counters(n)
for i = 1, n do
  if not c[2 * i - 1] and not force then return {'load', i} end
end
local id, charge, held = ARGV[1], big(ARGV[2]), {}
for i = 1, n do
  held[i] = redis.call('HGET', KEYS[4 * i], id)
  if not held[i] and not force then
    charge = least(charge, over(big(ARGV[4 + i]), add(big(c[2 * i - 1]), big(c[2 * i]))))
  end
end
local amount = str(charge)
local out = {'ok', amount}
for i = 1, n do
  local spent, reserved = big(c[2 * i - 1]), big(c[2 * i])
  if held[i] then
    redis.call('DECRBY', KEYS[4 * i - 2], held[i])
    redis.call('ZREM', KEYS[4 * i - 1], id)
    redis.call('HDEL', KEYS[4 * i], id)
    reserved = over(reserved, big(held[i]))
  end
  if c[2 * i - 1] and amount ~= '0' then
    redis.call('INCRBY', KEYS[4 * i - 3], amount)
    spent = add(spent, charge)
  end
  out[#out + 1] = str(spent)
  out[#out + 1] = str(reserved)
end
redis.call('SET', marker, amount, 'PX', ARGV[4])
if bk then
  bucket_correct(bk, now_ms(), tonumber(ARGV[5 + n]), tonumber(ARGV[6 + n]), tonumber(ARGV[7 + n]))
end
return out
"""

# KEYS: deadline sets; ARGV: hold ms, then the grant id for each key. Moves each live hold's deadline on;
# a hold already freed stays freed (XX). -> how many holds are still there.
RENEW = PRELUDE + r"""
local deadline = now_ms() + tonumber(ARGV[1])
local kept = 0
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', deadline, ARGV[i + 1])
  if redis.call('ZSCORE', KEYS[i], ARGV[i + 1]) then kept = kept + 1 end
end
return kept
"""

# KEYS: per slot r, z, h. Frees the expired holds of each. -> how many.
SWEEP = PRELUDE + r"""
local now, freed = now_ms(), 0
for i = 1, #KEYS / 3 do
  freed = freed + free_expired(KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], now)
end
return freed
"""

# KEYS: s, r, z, h of one slot. -> {spent, reserved} with the expired holds freed first | {'load'}
READ = PRELUDE + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'load'} end
free_expired(KEYS[2], KEYS[3], KEYS[4], now_ms())
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) or '0'}
"""

# KEYS: s, r of one slot. ARGV: the spend read from the store, the expiry (unix ms; '0': none).
# Both only when missing (SET NX), so instances loading at once agree on the first value.
LOAD = r"""
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  redis.call('SET', KEYS[2], '0', 'NX')
else
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2])
  redis.call('SET', KEYS[2], '0', 'NX', 'PXAT', ARGV[2])
end
return redis.call('GET', KEYS[1])
"""
