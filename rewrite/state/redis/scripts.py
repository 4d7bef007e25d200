"""The Lua scripts that make each shared decision one atomic step, timed by the Redis server's clock (TIME).

Keys of one pool share the hash tag `{pool}` (rewrite/state/redis/names.py), so a Redis Cluster keeps them on one
shard. Keys are named by keyed fingerprints only.
"""

# Shared by the scripts: the server's clock in milliseconds.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: rests (ZSET member -> until ms), turn (HASH: rr, seq, w:<fp>), lru (ZSET fp -> seq), then each key's
# leases (ZSET lease id -> expiry ms), in config order.
# ARGV: first what does not change from one pick to the next (packed once by the worker): strategy, lease ms, n, then
# four per key: fp, weight, tier, max_concurrent (0: none). Then this pick's: model, avoid (1-based, 0: none), lease
# id; the leases this worker gave back since its last pick, "i:lease id" each, `,` between them (a key without
# max_concurrent gives its lease back with the next pick: one round trip a request, not two); the keys that are out or
# resting after a stall (each worker keeps those), "i:out (0/1):slow ms" each, `,` between them (usually none).
# Returns {chosen (1-based, 0: none), wait ms (-1: no key will be back), busy (0/1)}; the chosen key is leased.
PICK = _NOW + """
local strategy, lease_ms, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local d = 3 + 4 * n
local model, avoid, lease_id = ARGV[d + 1], tonumber(ARGV[d + 2]), ARGV[d + 3]
for i, id in string.gmatch(ARGV[d + 4], '(%d+):([^,]+)') do redis.call('ZREM', KEYS[3 + tonumber(i)], id) end
local outs, slows = {}, {}
for i, out, slow in string.gmatch(ARGV[d + 5], '(%d+):(%d):(%d+)') do
  outs[tonumber(i)], slows[tonumber(i)] = out == '1', tonumber(slow)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- Read once for every key (each redis.call costs about as much as the rest of the script's work for one key): the
-- rests still running (usually none) and when each key was last picked.
local function scores(key)
  local by, listed = {}, redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for j = 1, #listed, 2 do by[listed[j]] = tonumber(listed[j + 1]) end
  return by
end
local rests, lrus = scores(KEYS[1]), scores(KEYS[3])
-- Leases are counted where they decide: a capped key, or least-used.
local counted = strategy == 'least-used'
local keys, ready, free, usable = {}, {}, {}, {}
for i = 1, n do
  local at = 3 + 4 * (i - 1)
  local fp = ARGV[at + 1]
  local k = {i = i, fp = fp, weight = tonumber(ARGV[at + 2]), tier = tonumber(ARGV[at + 3]),
             cap = tonumber(ARGV[at + 4]), out = outs[i] or false, slow = slows[i] or 0, leases = 0}
  if k.cap > 0 or counted then
    redis.call('ZREMRANGEBYSCORE', KEYS[3 + i], '-inf', now)
    k.leases = redis.call('ZCARD', KEYS[3 + i])
  end
  local rest = rests[fp] or 0
  if model ~= '' then rest = math.max(rest, rests[fp .. '|' .. model] or 0) end
  k.wait = math.max(0, rest - now)
  k.lru = lrus[fp] or 0
  local full = k.cap > 0 and k.leases >= k.cap
  keys[i] = k
  if not k.out and k.wait == 0 and k.slow == 0 then
    table.insert(ready, k)
    if not full then table.insert(free, k) end
  end
  if not k.out and not full then table.insert(usable, k) end
end

local function lower(a, b, fields)
  for _, f in ipairs(fields) do
    if a[f] ~= b[f] then return a[f] < b[f] end
  end
  return a.i < b.i
end
local function least(list, fields)
  local best = list[1]
  for _, k in ipairs(list) do if lower(k, best, fields) then best = k end end
  return best
end

local function choose(candidates)
  if strategy == 'round-robin' then
    local next_i = tonumber(redis.call('HGET', KEYS[2], 'rr') or 0)
    local by_i = {}
    for _, k in ipairs(candidates) do by_i[k.i] = k end
    for j = 0, n - 1 do
      local k = by_i[(next_i + j) % n + 1]
      if k then
        redis.call('HSET', KEYS[2], 'rr', k.i % n)
        return k
      end
    end
  elseif strategy == 'weighted' then
    local total, best, best_w = 0, nil, nil
    for _, k in ipairs(candidates) do
      local w = tonumber(redis.call('HINCRBYFLOAT', KEYS[2], 'w:' .. k.fp, k.weight))
      total = total + k.weight
      if best == nil or w > best_w then best, best_w = k, w end
    end
    redis.call('HINCRBYFLOAT', KEYS[2], 'w:' .. best.fp, -total)
    return best
  elseif strategy == 'least-used' then
    return least(candidates, {'leases', 'lru'})
  elseif strategy == 'priority' then
    return least(candidates, {'tier', 'lru'})
  end
  return least(candidates, {'lru'})  -- fair-cycle: the key picked longest ago, config order among equals
end

local function lease(k, wait)
  redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[2], 'seq', 1), k.fp)
  if k.cap == 0 and not counted then redis.call('ZREMRANGEBYSCORE', KEYS[3 + k.i], '-inf', now) end  -- (dead workers')
  redis.call('ZADD', KEYS[3 + k.i], now + lease_ms, lease_id)
  redis.call('PEXPIRE', KEYS[3 + k.i], lease_ms * 2)
  return {k.i, wait, 0}
end

if #free > 0 then
  local others = {}
  for _, k in ipairs(free) do if k.i ~= avoid then table.insert(others, k) end end
  return lease(choose(#others > 0 and others or free), 0)
end
if #ready > 0 then return {0, 0, 1} end
if #usable == 0 then
  local busy = 0
  for _, k in ipairs(keys) do if not k.out then busy = 1 end end
  return {0, -1, busy}
end
-- No key is ready: one resting after a stall at once, else the one back soonest.
for _, k in ipairs(usable) do k.avoided = (k.i == avoid) and 1 or 0 end
local best = least(usable, {'wait', 'slow', 'avoided', 'lru'})
return lease(best, best.wait)
"""

# KEYS: rests, the reason's key. ARGV: member (fp, or fp|model), ms, why. A longer rest already there stays (GT).
# Returns the ms until the member's rest ends.
REST = _NOW + """
local until_ms = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'GT', until_ms, ARGV[1])
local stored = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if stored == until_ms then redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[2])) end
return stored - now
"""

# KEYS: a key's leases. ARGV: lease id, lease ms. Only a lease still held is renewed (XX). Returns 1 if it was.
RENEW = _NOW + """
local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
if renewed == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2) end
return renewed
"""

# KEYS: the batch's mark, then the counters' hashes. ARGV: the mark's ms, the oldest minute of the hour, then
# (hash index, field, amount, ttl s) per increment; ttl 0: kept. An hour's hash (its name ends in `:hour`, its fields
# `<minute>|<counter>`) loses the minutes older than the hour. A batch already applied (its mark is set: a write that
# timed out but was carried out, then sent again) is not counted twice. Returns 1 if applied, 0 if it was already.
USAGE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[1])) then return 0 end
local oldest = tonumber(ARGV[2])
for j = 3, #ARGV, 4 do
  local key, field, amount, ttl = KEYS[1 + tonumber(ARGV[j])], ARGV[j + 1], ARGV[j + 2], tonumber(ARGV[j + 3])
  if string.sub(field, -4) == 'cost' then
    redis.call('HINCRBYFLOAT', key, field, amount)
  else
    redis.call('HINCRBY', key, field, amount)
  end
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
for i = 2, #KEYS do
  if string.sub(KEYS[i], -5) == ':hour' then
    for _, field in ipairs(redis.call('HKEYS', KEYS[i])) do
      local minute = tonumber(string.match(field, '^(%d+)|'))
      if minute and minute <= oldest then redis.call('HDEL', KEYS[i], field) end
    end
  end
end
return 1
"""
