"""The Lua of a pool's quota windows in Redis (rewrite/pool/windows.py says what a window is): the pick script's
chunk that checks them and counts the pick's request, and the script that counts an answer's usage or puts the
vendor's figures in place.

A pool's windows are one hash (rewrite/state/redis/names.py, `windows`), the pick's last key: field
"fp|window|unit" -> "left|limit|reset ms|reserve". Its times are the workers' wall clocks (a vendor's reset is a
time of day, a cap's period a calendar one), sent with each call, not the Redis server's.
"""

from rewrite.pool.windows import VENDOR_SPEND

# (unit, a request's, each token's) for each unit of a vendor's windows, as a Lua table
_LUA_VENDOR_SPEND = "{" + ", ".join(f"{{'{unit}', {one!r}, {each!r}}}" for unit, one, each in VENDOR_SPEND) + "}"

# Read by both scripts: a tally's fields; nil when there is none, or its reset has passed.
_TALLY = """
local function w_read(value, wall)
  if not value then return nil end
  local left, limit, reset, reserve = string.match(value, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
  if not left or tonumber(reset) <= wall then return nil end
  return {left = tonumber(left), limit = tonumber(limit), reset = tonumber(reset), reserve = tonumber(reserve)}
end
local function w_value(t) return t.left .. '|' .. t.limit .. '|' .. t.reset .. '|' .. t.reserve end
"""

# The pick's part (after the strategy's chunk, before the pick's body). ARGV, after the model and the pick's own
# string (whose last two fields are the wall clock, ms, and how many checks: `wall` and `w_count`): the request's
# checks (rewrite/pool/windows.py's `Check`), one string each: "unit|amount|a cap's limit|a cap's period end in
# ms|window" (the window last: a quota group is a model's name, which may hold any character); the vendor's windows of
# the model's quota group in one, "*|the request's tokens|0|0|group", made into a check a unit here as
# `vendor_checks` makes them (packed at every pick: one argument costs less than four). Defines `windowed(k)`:
# the ms until k's windows take the request (0: now; a key over one is noted in `w_passed`) and k's headroom (0..1:
# the share left of its tightest window the request counts in; 1 when none is known to be used), and
# `spend_windows(k)`: the request counted in the windows of k, the key chosen to go at once (windows.picked: what it
# is expected to spend of the vendor's, a request of a cap's, whose new period starts whole).
PICK_WINDOWS = _TALLY + """
local w_vendor = VENDOR_SPEND
local w_checks, w_tallies, w_passed = {}, {}, {}
for j = 1, w_count do
  local unit, amount, limit, reset, window = string.match(ARGV[d + 2 + j], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if unit == '*' then
    for _, v in ipairs(w_vendor) do
      w_checks[#w_checks + 1] = {window = window, unit = v[1], amount = v[2] + v[3] * tonumber(amount), limit = 0,
                                 reset = 0}
    end
  else
    w_checks[#w_checks + 1] = {window = window, unit = unit, amount = tonumber(amount), limit = tonumber(limit),
                               reset = tonumber(reset)}
  end
end
""".replace("VENDOR_SPEND", _LUA_VENDOR_SPEND) + """
if w_count > 0 then
  local listed = redis.call('HGETALL', KEYS[#KEYS])
  for j = 1, #listed, 2 do w_tallies[listed[j]] = listed[j + 1] end
end
local function w_field(k, c) return k.fp .. '|' .. c.window .. '|' .. c.unit end
local function windowed(k)
  local wait, room = 0, 1
  for _, c in ipairs(w_checks) do
    local t = w_read(w_tallies[w_field(k, c)], wall)
    if t then
      local untouched = t.limit > 0 and t.left >= t.limit
      if not untouched and t.left - t.reserve < math.max(c.amount, 1e-9) then wait = math.max(wait, t.reset - wall) end
      local usable = t.limit - t.reserve
      if usable > 0 then room = math.min(room, math.max(0, math.min(1, (t.left - t.reserve) / usable))) end
    end
  end
  if wait > 0 then w_passed[#w_passed + 1] = k.i .. ':' .. math.ceil(wait) end
  return wait, room
end
local function spend_windows(k)
  for _, c in ipairs(w_checks) do
    if (c.limit == 0 or c.unit == 'requests') and c.amount > 0 then
      local field = w_field(k, c)
      local t = w_read(w_tallies[field], wall)
      if t then t.left = t.left - c.amount
      elseif c.limit > 0 then t = {left = c.limit - c.amount, limit = c.limit, reset = c.reset, reserve = 0} end
      if t then redis.call('HSET', KEYS[#KEYS], field, w_value(t)) end
    end
  end
end
"""

# Around the pick's body (a function, so that every answer it gives has this added last): the keys passed over for
# a window, "i:ms until its reset" each, `,` between them (Pick.passed).
PICK_BODY_HEAD = "local function pick()\n"
PICK_BODY_TAIL = """
end
local answer = pick()
"""
PICK_ANSWER = """
answer[#answer + 1] = table.concat(w_passed, ',')
return answer
"""

# KEYS: the windows. ARGV: the wall clock (ms), then six per change: field, `set` (the vendor's figures) or `add`
# (usage counted: a cap's new period starts whole, a vendor's window past its reset is left alone), left or amount,
# limit, reset ms, reserve. Tallies an hour past their reset are dropped.
WINDOW = _TALLY + """
local wall = tonumber(ARGV[1])
for j = 2, #ARGV, 6 do
  local field, x = ARGV[j], tonumber(ARGV[j + 2])
  local t = {left = x, limit = tonumber(ARGV[j + 3]), reset = tonumber(ARGV[j + 4]), reserve = tonumber(ARGV[j + 5])}
  if ARGV[j + 1] == 'add' then
    local now = w_read(redis.call('HGET', KEYS[1], field), wall)
    if now then now.left = now.left - x
    elseif t.limit > 0 then t.left, t.reserve, now = t.limit - x, 0, t end
    t = now
  end
  if t then redis.call('HSET', KEYS[1], field, w_value(t)) end
end
local listed = redis.call('HGETALL', KEYS[1])
for j = 1, #listed, 2 do
  local reset = tonumber(string.match(listed[j + 1], '^[^|]+|[^|]+|([^|]+)|'))
  if not reset or reset < wall - 3600000 then redis.call('HDEL', KEYS[1], listed[j]) end
end
return 1
"""
