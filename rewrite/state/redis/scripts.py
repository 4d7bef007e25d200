"""The Lua scripts that make each shared decision one atomic step, timed by the Redis server's clock (TIME).

Keys of one pool share the hash tag `{pool}` (rewrite/state/redis/names.py), so a Redis Cluster keeps them on one
shard. Keys are named by keyed fingerprints only.
"""

from rewrite.state.redis.bind_scripts import PICK_AFFINITY, PICK_AFFINITY_ANSWER, PICK_AFFINITY_HEAD
from rewrite.state.redis.client_scripts import PICK_CLIENT
from rewrite.state.redis.window_scripts import PICK_ANSWER, PICK_BODY_HEAD, PICK_BODY_TAIL, PICK_WINDOWS

# Shared by the scripts: the server's clock in milliseconds.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# The pick: _PICK_HEAD, then the pool's strategy's chunk (STRATEGIES), the quota windows' (window_scripts.py), then
# _PICK_BODY, the conversation's (bind_scripts.py: its bound key, or the keys it is placed on) and _PICK_END; one
# script per strategy. The windows' key and arguments come last (after any other's), and so does what they add to
# the answer (the keys passed over for a window); the conversation's come before them.
# KEYS: rests (ZSET member -> until ms), turn (HASH: the strategies' positions: rr, used, rr:<tier>, w:<fp>; and seq),
# lru (ZSET fp -> seq), then each key's leases (ZSET lease id -> expiry ms), in config order; then the bindings
# (HASH) and each key's live conversations (ZSET), then the clients' figures and requests in flight
# (client_scripts.py), then the re-checks of long rests (HASH: member of the rests ->
# "next ms|wait ms|since ms|why", rewrite/pool/recheck.py), then the windows.
# ARGV: first what does not change from one pick to the next (packed once by the worker): lease ms, n, then four per
# key: fp, weight, tier, max_concurrent (0: none). Then this pick's, each a string (a few arguments, not ~30: packing
# them was a tenth of what a pick cost the worker): the model; "avoid|lease id|given back|odd|wall|checks", where
# avoid is the key that just failed (1-based, 0: none), given back the leases this worker gave back since its last
# pick ("i:lease id" each, `,` between them: a key without max_concurrent gives its lease back with the next pick, one
# round trip a request, not two), odd the keys that are out or resting after a stall (each worker keeps those;
# "i:out (0/1):slow ms" each, `,` after each, usually none), wall the worker's wall clock (ms) and checks how many
# quota windows' checks follow; then those checks (window_scripts.py), then the conversation's (bind_scripts.py),
# then the client's budget and limits, last (client_scripts.py: a client over one gets a string, no key picked).
# Returns {chosen (1-based, 0: none), wait ms (-1: no key will be back), busy (0/1)}; the chosen key is leased. When
# no key is chosen, or one that must be waited for, two more: how long until a key that is not out has no rest (ms,
# -1: every key is out) and whether those without one are all at their cap (0/1), as rewrite/pool/local.py's
# `resting` says it: what the client is told when it will not wait. Then the conversation's part and the windows'
# (bind_scripts.py, window_scripts.py). A key chosen at once for a request of no conversation, no key passed over for
# a window (most picks): its index alone, an integer (_PICK_AT_ONCE: one number for the worker to read, not a list).
# A key chosen for the re-check of its rests (each due: rewrite/pool/recheck.py; looked up only for a key that rests)
# is named negated, with what the trail says of it in place of the two above: {-i, 0, 0, since ms, why, scopes} (the
# scopes re-checked: "" for the whole key, the model, `\n` between them); that re-check's next one is moved out
# (twice its wait, jittered) in the same step, so no other worker makes a second while it is in flight.
_PICK_HEAD = _NOW + """
local lease_ms, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local d = 2 + 4 * n
local model = ARGV[d + 1]
local avoid, lease_id, given_back, odd, wall, w_count =
  string.match(ARGV[d + 2], '^(%d+)|([^|]*)|([^|]*)|([^|]*)|(%d+)|(%d+)$')
avoid, wall, w_count = tonumber(avoid), tonumber(wall), tonumber(w_count)
local keys = {}  -- every key, in config order (filled below, after the strategy's chunk)
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
-- In config order, from position `next_j` of `members`, the first that is among `candidates`; the position after it
-- is stored in the turn's `field`.
local function in_turn(members, candidates, field)
  local m, among = #members, {}
  for _, k in ipairs(candidates) do among[k.i] = true end
  local next_j = tonumber(redis.call('HGET', KEYS[2], field) or 0)
  for j = 0, m - 1 do
    local k = members[(next_j + j) % m + 1]
    if among[k.i] then
      redis.call('HSET', KEYS[2], field, (next_j + j + 1) % m)
      return k
    end
  end
end
"""

# Each strategy's chunk (rewrite/pool/strategies.py's, written for the script): `counted` (whether its choice reads
# the leases held, which are then counted for every key) and `choose(candidates)`, the free keys in config order.
STRATEGIES = {
    "round-robin": """
local counted = false
local function choose(candidates) return in_turn(keys, candidates, 'rr') end
""",
    # Every usable key once per cycle before any is used again: `used` holds the cycle's keys, ",fp,fp,".
    "fair-cycle": """
local counted = false
local function choose(candidates)
  local used, chosen = redis.call('HGET', KEYS[2], 'used') or ',', nil
  for _, k in ipairs(candidates) do
    if not string.find(used, ',' .. k.fp .. ',', 1, true) then chosen = k break end
  end
  if chosen == nil then used, chosen = ',', candidates[1] end  -- every usable key had its turn: a new cycle
  redis.call('HSET', KEYS[2], 'used', used .. chosen.fp .. ',')
  return chosen
end
""",
    # The fewest leases held (by every worker), then the key picked longest ago.
    "least-used": """
local counted = true
local function choose(candidates) return least(candidates, {'leases', 'lru'}) end
""",
    # Smooth weighted round-robin (as nginx does it), its running weights in the turn's `w:<fp>`.
    "weighted": """
local counted = false
local function choose(candidates)
  local total, best, best_w = 0, nil, nil
  for _, k in ipairs(candidates) do
    local w = tonumber(redis.call('HINCRBYFLOAT', KEYS[2], 'w:' .. k.fp, k.weight))
    total = total + k.weight
    if best == nil or w > best_w then best, best_w = k, w end
  end
  redis.call('HINCRBYFLOAT', KEYS[2], 'w:' .. best.fp, -total)
  return best
end
""",
    # The first tier that has a candidate, round-robin among its keys (the turn's `rr:<tier>`).
    "priority": """
local counted = false
local function choose(candidates)
  local tier = candidates[1].tier
  for _, k in ipairs(candidates) do tier = math.min(tier, k.tier) end
  local members = {}
  for _, k in ipairs(keys) do if k.tier == tier then table.insert(members, k) end end
  return in_turn(members, candidates, 'rr:' .. tier)
end
""",
}

_PICK_BODY = """
for i, id in string.gmatch(given_back, '(%d+):([^,]+)') do redis.call('ZREM', KEYS[3 + tonumber(i)], id) end
local outs, slows = {}, {}
for i, out, slow in string.gmatch(odd, '(%d+):(%d):(%d+)') do
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
-- The re-check of a resting key's rests for the model (rewrite/pool/recheck.py), when each of them is due.
local function due(fp)
  local members, scopes = {}, {}
  for _, m in ipairs(model ~= '' and {fp, fp .. '|' .. model} or {fp}) do
    if (rests[m] or 0) > now then members[#members + 1], scopes[#scopes + 1] = m, m == fp and '' or model end
  end
  local values = redis.call('HMGET', KEYS[#KEYS - 1], unpack(members))
  for j = 1, #members do
    local at = values[j] and tonumber(string.match(values[j], '^(%d+)|'))
    if not at or at > now then return nil end
  end
  return {members = members, values = values, scopes = table.concat(scopes, '\\n')}
end
local function claim(k)
  local r, since, why = k.recheck, 0, ''
  for j, m in ipairs(r.members) do
    local _, wait, s, w = string.match(r.values[j], '^(%d+)|(%d+)|(%d+)|(.*)$')
    wait = tonumber(wait) * 2
    local jittered = math.floor(wait * (1 + 0.2 * (2 * (now % 997) / 996 - 1)))
    redis.call('HSET', KEYS[#KEYS - 1], m, (now + jittered) .. '|' .. wait .. '|' .. s .. '|' .. w)
    if j == 1 then since, why = tonumber(s), w end
  end
  return {-k.i, 0, 0, since, why, r.scopes}
end
-- Leases are counted where they decide: a capped key, or a strategy that reads them.
local ready, free, usable = {}, {}, {}
for i = 1, n do
  local at = 2 + 4 * (i - 1)
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
  if k.wait > 0 and not k.out then
    k.recheck = due(fp)
    if k.recheck then k.wait = 0 end
  end
  local over
  over, k.headroom = windowed(k)
  k.wait = math.max(k.wait, math.ceil(over))
  k.lru = lrus[fp] or 0
  local full = k.cap > 0 and k.leases >= k.cap
  keys[i] = k
  if not k.out and k.wait == 0 and k.slow == 0 then
    table.insert(ready, k)
    if not full then table.insert(free, k) end
  end
  if not k.out and not full then table.insert(usable, k) end
end

local function lease(k, wait)
  if wait == 0 then spend_windows(k) end
  redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[2], 'seq', 1), k.fp)
  if k.cap == 0 and not counted then redis.call('ZREMRANGEBYSCORE', KEYS[3 + k.i], '-inf', now) end  -- (dead workers')
  redis.call('ZADD', KEYS[3 + k.i], now + lease_ms, lease_id)
  redis.call('PEXPIRE', KEYS[3 + k.i], lease_ms * 2)
  if k.recheck and wait == 0 then return claim(k) end
  return {k.i, wait, 0}
end

local function resting()
  local soonest, busy = nil, 1
  for _, k in ipairs(keys) do
    if not k.out and (soonest == nil or k.wait < soonest) then soonest = k.wait end
  end
  if soonest == nil then return -1, 0 end
  if soonest > 0 then return soonest, 0 end
  for _, k in ipairs(keys) do
    if not k.out and k.wait == 0 and not (k.cap > 0 and k.leases >= k.cap) then busy = 0 end
  end
  return 0, busy
end
"""

_PICK_END = """
if #free > 0 then
  if n == 1 then return lease(free[1], 0) end  -- a pool of one key: the strategy is not asked (rewrite/pool/local.py)
  local others = {}
  for _, k in ipairs(free) do if k.i ~= avoid then table.insert(others, k) end end
  return lease(choose(#others > 0 and others or free), 0)
end

if #ready > 0 then return {0, 0, 1, resting()} end
if #usable == 0 then
  local busy = 0
  for _, k in ipairs(keys) do if not k.out then busy = 1 end end
  return {0, -1, busy, resting()}
end
-- No key is ready: one resting after a stall at once, else the one back soonest.
for _, k in ipairs(usable) do k.avoided = (k.i == avoid) and 1 or 0 end
local best = least(usable, {'wait', 'slow', 'avoided', 'lru'})
local picked = lease(best, best.wait)
if best.wait > 0 then picked[4], picked[5] = resting() end
return picked
"""

_PICK_AT_ONCE = """
if a_count < 0 and #w_passed == 0 and answer[1] > 0 and answer[2] == 0 then return answer[1] end
"""

PICKS = {name: _PICK_HEAD + chunk + PICK_WINDOWS + PICK_AFFINITY_HEAD + PICK_CLIENT + PICK_BODY_HEAD + _PICK_BODY
               + PICK_AFFINITY + _PICK_END + PICK_BODY_TAIL + _PICK_AT_ONCE + PICK_AFFINITY_ANSWER + PICK_ANSWER
         for name, chunk in STRATEGIES.items()}


def pick(strategy: str) -> str:
    """The pick script of `strategy`; an unknown name is an error, never another strategy."""
    try:
        return PICKS[strategy]
    except KeyError:
        raise ValueError(f"unknown strategy {strategy!r}: one of {', '.join(PICKS)}") from None


# KEYS: rests, the reason's key, the re-checks. ARGV: member (fp, or fp|model), ms, why, the pool's recheck_after
# in ms (0: never), renew (1: a refused re-check's answer, the rest set from it shorter or longer; else a longer rest
# already there stays: GT). A new rest longer than recheck_after is first re-checked after that long; one running
# keeps its re-checks. Returns the ms until the member's rest ends.
REST = _NOW + """
local member, ms, recheck = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local until_ms = now + ms
local before = tonumber(redis.call('ZSCORE', KEYS[1], member) or 0)
if ARGV[5] == '1' then redis.call('ZADD', KEYS[1], until_ms, member)
else redis.call('ZADD', KEYS[1], 'GT', until_ms, member) end
local stored = tonumber(redis.call('ZSCORE', KEYS[1], member))
if stored == until_ms then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ms)
  local long = recheck > 0 and ms > recheck
  if long and (before <= now or redis.call('HEXISTS', KEYS[3], member) == 0) then
    redis.call('HSET', KEYS[3], member, (now + recheck) .. '|' .. recheck .. '|' .. now .. '|' .. ARGV[3])
  elseif not long and before <= now then
    redis.call('HDEL', KEYS[3], member)
  end
end
return stored - now
"""

# KEYS: rests, the reason's key, the re-checks. ARGV: member. A re-check was served: the rest ends now.
RECOVERED = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
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
