"""The Lua of the clients' figures in Redis (rewrite/accounting/client_book.py keeps the same in one process): the
pick script's chunk that checks a client's budget and limits as client-wide windows, in the same step as the key is
picked, and the script that counts what a request spent when it is done.

Two keys hold every client's (rewrite/state/redis/names.py, fixed keys of every pool's pick):
- `rot:clients`, a hash: field "client RS row RS period" (RS: the byte 0x1e; row "provider US model", US 0x1f, or
  `*` for the client's sums over its rows; period one of PERIODS or `total`) -> "period end ms|figures", the eight
  figures of rewrite/accounting/client_book.py's FIGURES (`|` between them). A period's field is started afresh
  when its end is another's: a client's fields are bounded (its rows times six).
- `rot:clients:flying`, a sorted set: "client RS request id" -> when it expires (ms), each request that passed its
  check and is not done (a worker that dies leaves its own to expire): counted in a requests limit, as a worker alone
  counts its requests in flight.
Period ends are the workers' wall clocks (a calendar period), as the quota windows' are.
"""

from rewrite.accounting.client_book import FIGURES, PERIODS

_LUA_PERIODS = "{" + ", ".join(f"'{p}'" for p in PERIODS) + "}"
# The figure a unit of a rule reads (1-based, after the period's end): requests, tokens (input and output), dollars.
_REQUESTS, _INPUT, _OUTPUT, _COST = (FIGURES.index(f) + 2 for f in ("requests", "input_tokens", "output_tokens",
                                                                    "cost"))

# The pick's part, before its body. ARGV's last: "-" (no client's rules to check), or "flight ms|rules|client RS
# request id" (the id last: a client's name may hold `|`), each rule "i:unit:amount:period:end ms," (period "" for a
# total; i its place among the client's rules, 1-based). A client over a rule gets the pick's answer at once, a
# string: "client|i|what it used" (no key is picked, none leased); else its request is counted in flight.
PICK_CLIENT = f"""
do
  local c_arg = ARGV[#ARGV]
  if c_arg ~= '-' then
    local c_ttl, c_rules, c_member = string.match(c_arg, '^(%d+)|([^|]*)|(.*)$')
    local c_name = string.match(c_member, '^(.*)\\30')
    local c_flying = nil
    for i, unit, amount, per, ends in string.gmatch(c_rules, '(%d+):(%a+):([^:]+):(%a*):(%d+),') do
      local used = 0
      local value = redis.call('HGET', KEYS[#KEYS - 3], c_name .. '\\30*\\30' .. (per ~= '' and per or 'total'))
      if value then
        local f = {{}}
        for x in string.gmatch(value, '[^|]+') do f[#f + 1] = tonumber(x) end
        if per == '' or f[1] == tonumber(ends) then
          if unit == 'dollars' then used = f[{_COST}]
          elseif unit == 'requests' then used = f[{_REQUESTS}]
          else used = f[{_INPUT}] + f[{_OUTPUT}] end
        end
      end
      if unit == 'requests' then
        if c_flying == nil then
          c_flying = 0
          redis.call('ZREMRANGEBYSCORE', KEYS[#KEYS - 2], '-inf', wall)
          local prefix = c_name .. '\\30'
          for _, m in ipairs(redis.call('ZRANGE', KEYS[#KEYS - 2], 0, -1)) do
            if string.sub(m, 1, #prefix) == prefix then c_flying = c_flying + 1 end
          end
        end
        used = used + c_flying
      end
      if used >= tonumber(amount) then return 'client|' .. i .. '|' .. used end
    end
    redis.call('ZADD', KEYS[#KEYS - 2], wall + tonumber(c_ttl), c_member)
  end
end
"""

# KEYS: the clients' figures, their requests in flight. ARGV: the client, its request's id ("": none in flight),
# the periods' ends (ms, `|` between them, PERIODS' order), then two per row: the row ("provider US model"), its
# figures (`|` between them). Each row and the client's sums (`*`) gain the figures in every period under way and in
# all; the request is no longer in flight.
SPEND = f"""
local name, flight = ARGV[1], ARGV[2]
local pers, ends = {_LUA_PERIODS}, {{}}
for x in string.gmatch(ARGV[3], '[^|]+') do ends[#ends + 1] = x end
pers[#pers + 1], ends[#ends + 1] = 'total', '0'
local function add(row, figures)
  for j, per in ipairs(pers) do
    local field = name .. '\\30' .. row .. '\\30' .. per
    local held, f = redis.call('HGET', KEYS[1], field), {{}}
    if held then for x in string.gmatch(held, '[^|]+') do f[#f + 1] = x end end
    if f[1] ~= ends[j] then f = {{ends[j]}} end
    for i, v in ipairs(figures) do f[i + 1] = tostring((tonumber(f[i + 1]) or 0) + v) end
    redis.call('HSET', KEYS[1], field, table.concat(f, '|'))
  end
end
for j = 4, #ARGV, 2 do
  local figures = {{}}
  for x in string.gmatch(ARGV[j + 1], '[^|]+') do figures[#figures + 1] = tonumber(x) end
  add(ARGV[j], figures)
  add('*', figures)
end
if flight ~= '' then redis.call('ZREM', KEYS[2], name .. '\\30' .. flight) end
return 1
"""
