-- wrk script for bench/many_keys.py: POST a chat request with a key taken from a list, per request.
--   BENCH_BODY_FILE   the JSON request body
--   BENCH_KEYS_FILE   one sk_ key per line
--   BENCH_KEY_ORDER   "random" (default: any key, each request) or "sequential" (the list in order,
--                     from BENCH_KEY_START, round and round: a warm pass sends each key once when
--                     the caller adds up the requests of its runs until they reach the list's length)
-- Prints one line "BENCH_JSON {...}" with requests, errors and latency percentiles (us).
local f = assert(io.open(assert(os.getenv("BENCH_BODY_FILE")), "rb"))
local body = f:read("*a")
f:close()
local keys = {}
for line in io.lines(assert(os.getenv("BENCH_KEYS_FILE"))) do
  if #line > 0 then keys[#keys + 1] = "Bearer " .. line end
end
local order = os.getenv("BENCH_KEY_ORDER") or "random"
local next_index = tonumber(os.getenv("BENCH_KEY_START") or "0")
local headers = {["Content-Type"] = "application/json"}

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

request = function()
  local i
  if order == "sequential" then
    i = next_index % #keys + 1
    next_index = next_index + 1
  else
    i = math.random(#keys)
  end
  headers["Authorization"] = keys[i]
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
