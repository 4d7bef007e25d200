"""The Lua of a pool's conversation bindings in Redis (rewrite/pool/affinity.py says what they are;
rewrite/pool/local.py decides the same in Python): the pick script's chunks that look the request's ids up and keep
or place its conversation, and the scripts that bind and unbind.

A pool's bindings are one hash (rewrite/state/redis/names.py, `bindings`), a fixed key of the pick: id ->
"fp|until ms|depth|name" (the key by fingerprint: a worker whose config orders its keys otherwise reads the same
key); their expiries a sorted set (`bound`, id -> until ms), of which each bind drops a bounded number of the
expired ones with their ids. Each key's live conversations: a sorted set (`live(fp)`, name -> until ms), counted
by the pick (ZCOUNT) for placement. Times are the workers' wall clocks, as the windows' are.
"""

from rewrite.pool.affinity import COMPACTED, LIVE_CAP

# The pick's part before its body (after the windows' chunk, whose `wall` it reads). ARGV, after the windows' checks:
# "-1" (the request has no conversation), or "how many ids are looked up|hard (0/1)|patient (0/1)|the request's
# depth|its pin's holder (1-based; 0 none)|the session id among them ('' none)" (the session last: it may hold any
# character), then the ids. KEYS: after the leases, the bindings' hash, then each key's live conversations. `a_why`,
# `a_bound` (the bound key, 1-based; 0 none) and `a_name` (its binding's name) are added to the answer, before the
# windows' part.
PICK_AFFINITY_HEAD = f"""
local a_at = d + 3 + w_count
local a_count, a_hard, a_patient, a_depth, a_holder, a_session = -1, false, false, 0, 0, ''
do
  local c, h, p, dp, ho, s = string.match(ARGV[a_at], '^(-?%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if c then
    a_count, a_hard, a_patient, a_depth, a_holder, a_session = tonumber(c), h == '1', p == '1', tonumber(dp),
      tonumber(ho), s
  end
end
local a_why, a_bound, a_name = '', 0, ''
local LIVE_CAP, COMPACTED = {LIVE_CAP}, {COMPACTED!r}
-- The binding of the first id looked up that is live and names a key of the pool: key index, name, depth, the id;
-- the pin's holder in its place when it names another key (under that binding's name).
local function a_lookup()
  if a_count < 0 then return nil end
  local bi, bname, bdepth, matched
  if a_count > 0 then
    local ids, by_fp = {{}}, {{}}
    for j = 1, a_count do ids[j] = ARGV[a_at + j] end
    for i = 1, n do by_fp[ARGV[2 + 4 * (i - 1) + 1]] = i end
    local values = redis.call('HMGET', KEYS[4 + n], unpack(ids))
    for j = 1, a_count do
      if values[j] then
        local fp, until_ms, depth, name = string.match(values[j], '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
        if fp and by_fp[fp] and tonumber(until_ms) > wall then
          bi, bname, bdepth, matched = by_fp[fp], name, tonumber(depth), ids[j]
          break
        end
      end
    end
  end
  if a_holder > 0 and a_holder <= n and bi ~= a_holder then return a_holder, bname or '', a_depth, false end
  return bi, bname, bdepth, matched
end
"""

# In the pick's body, once each key is read and before the strategy chooses among the free keys: the bound key
# when it can serve (at its cap, waited for when patient; a pin's while it rests), else `free` narrowed to the keys
# a conversation is placed on (the fewest live conversations, capped, then the most headroom to 0.05).
PICK_AFFINITY = """
if a_count >= 0 then
  a_why = 'new'
  local bi, bname, bdepth, matched = a_lookup()
  if bi and matched == a_session and a_depth < COMPACTED * bdepth then
    a_why, a_bound = 'compaction', bi
  elseif bi then
    local b = keys[bi]
    local b_full = b.cap > 0 and b.leases >= b.cap
    local b_ready = not b.out and b.wait == 0 and b.slow == 0
    a_why, a_bound, a_name = 'bound', bi, bname
    if b_ready and bi ~= avoid and not b_full then return lease(b, 0) end
    if b_ready and bi ~= avoid and a_patient then return {0, 0, 1, resting()} end
    if a_hard and not b.out and bi ~= avoid and not b_ready and not b_full then
      local picked = lease(b, b.wait)
      if b.wait > 0 then picked[4], picked[5] = resting() end
      return picked
    end
    a_why = 'moved'
  end
  if #free > 0 then
    local others = {}
    for _, k in ipairs(free) do if k.i ~= avoid then table.insert(others, k) end end
    if #others > 0 then free = others end
    local low, room = nil, nil
    for _, k in ipairs(free) do
      k.live = math.min(LIVE_CAP, redis.call('ZCOUNT', KEYS[4 + n + k.i], '(' .. wall, '+inf'))
      k.room = math.floor(k.headroom * 20 + 0.5)
      if low == nil or k.live < low or (k.live == low and k.room > room) then low, room = k.live, k.room end
    end
    local placed = {}
    for _, k in ipairs(free) do if k.live == low and k.room == room then table.insert(placed, k) end end
    free = placed
  end
end
"""

# After the body: why the key was chosen, the bound key and its binding's name (rewrite/state/redis/decisions.py
# reads them before the windows' last part).
PICK_AFFINITY_ANSWER = """
answer[#answer + 1] = a_why
answer[#answer + 1] = a_bound
answer[#answer + 1] = a_name
"""

# KEYS: the bindings, their expiries, then each key's live conversations (config order). ARGV: the wall clock (ms),
# the key (1-based), its fp, until (ms), depth, the conversation's name, then the ids bound. The conversation is live
# on that key until then, and on no other; expired bindings dropped, at most 64 a call.
BIND = """
local wall, i, fp, until_ms, depth, name = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local value = fp .. '|' .. until_ms .. '|' .. depth .. '|' .. name
for j = 7, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[j], value)
  redis.call('ZADD', KEYS[2], until_ms, ARGV[j])
end
for k = 3, #KEYS do
  if k ~= 2 + i then redis.call('ZREM', KEYS[k], name) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2 + i], '-inf', wall)
redis.call('ZADD', KEYS[2 + i], until_ms, name)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', wall, 'LIMIT', 0, 64)
if #expired > 0 then
  redis.call('HDEL', KEYS[1], unpack(expired))
  redis.call('ZREM', KEYS[2], unpack(expired))
end
return 1
"""

# KEYS: the bindings, their expiries, the key's live conversations. ARGV: the key's fp, the conversation's name, then
# the ids: those bound to that key are dropped, and the conversation (by its name and its bindings') from its live.
UNBIND = """
local names = {ARGV[2]}
for j = 3, #ARGV do
  local value = redis.call('HGET', KEYS[1], ARGV[j])
  if value then
    local fp, _, _, name = string.match(value, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
    if fp == ARGV[1] then
      redis.call('HDEL', KEYS[1], ARGV[j])
      redis.call('ZREM', KEYS[2], ARGV[j])
      names[#names + 1] = name
    end
  end
end
redis.call('ZREM', KEYS[3], unpack(names))
return 1
"""
