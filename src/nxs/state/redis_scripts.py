"""The Lua scripts of the Redis backend: each operation is one round trip, atomic, and
timed by the server's own clock (`TIME`), so replicas with skewed clocks agree.

Times are milliseconds. Keys: `{ns}rpm:{scope}` (hash: tokens `t`, stamp `s`),
`{ns}fly:{scope}` (sorted set: lease id → expiry), `{ns}lease:{id}` (the in-flight keys a
lease holds, newline-separated), `{ns}kfly:{key}` and `{ns}cool:{key}` for upstream keys.
The bucket arithmetic mirrors `nxs.state.limits` (`refilled`, `rpm_refusal`).
"""

from __future__ import annotations

from typing import Final

_NOW: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: lease, then per limit (rpm bucket, in-flight set). ARGV: lease id, ttl ms, then per
# limit rpm and cap ('' = none). Returns {1} or {0, limit index, reason, retry after}.
ACQUIRE: Final = (
    _NOW
    + """
local lease, ttl = ARGV[1], tonumber(ARGV[2])
local count = (#KEYS - 1) / 2
local tokens = {}
for i = 1, count do
  local rpm, cap = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  local fly = KEYS[2 * i + 1]
  if cap then
    redis.call('ZREMRANGEBYSCORE', fly, '-inf', now)
    if redis.call('ZCARD', fly) >= cap then return {0, i, 'in_flight', 1} end
  end
  if rpm then
    local bucket = redis.call('HMGET', KEYS[2 * i], 't', 's')
    local left = tonumber(bucket[1])
    if left == nil then
      left = rpm
    else
      left = math.min(rpm, left + math.max(0, now - tonumber(bucket[2])) * rpm / 60000)
    end
    if left < 1 then
      if rpm <= 0 then return {0, i, 'rpm', 60} end
      return {0, i, 'rpm', math.max(1, math.ceil((1 - left) * 60 / rpm - 1e-9))}
    end
    tokens[i] = left
  end
end
local held = {}
for i = 1, count do
  if tokens[i] then
    redis.call('HSET', KEYS[2 * i], 't', string.format('%.17g', tokens[i] - 1), 's', now)
    redis.call('PEXPIRE', KEYS[2 * i], 61000)
  end
  if tonumber(ARGV[2 * i + 2]) then
    local fly = KEYS[2 * i + 1]
    redis.call('ZADD', fly, now + ttl, lease)
    if redis.call('PTTL', fly) < ttl then redis.call('PEXPIRE', fly, ttl) end
    held[#held + 1] = fly
  end
end
if #held > 0 then redis.call('SET', KEYS[1], table.concat(held, '\\n'), 'PX', ttl) end
return {1}
"""
)

# KEYS: lease. ARGV: lease id. Frees every slot the lease holds; 0 if it held none.
RELEASE: Final = """
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
for fly in string.gmatch(held, '[^\\n]+') do redis.call('ZREM', fly, ARGV[1]) end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: lease. ARGV: lease id, ttl ms. 1 if the lease was alive and now lasts ttl more.
RENEW: Final = (
    _NOW
    + """
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local ttl = tonumber(ARGV[2])
for fly in string.gmatch(held, '[^\\n]+') do
  redis.call('ZADD', fly, 'XX', now + ttl, ARGV[1])
  if redis.call('PTTL', fly) < ttl then redis.call('PEXPIRE', fly, ttl) end
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""
)

# KEYS: the key's in-flight set. ARGV: lease id, ttl ms.
KEY_STARTED: Final = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
)

# KEYS: the key's cooldown. ARGV: ms. A longer cooldown already running is kept.
COOL_DOWN: Final = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""

# KEYS: per upstream key (in-flight set, cooldown). Returns per key: calls, cooldown ms.
LOADS: Final = (
    _NOW
    + """
local out = {}
for i = 1, #KEYS, 2 do
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i], '(' .. now, '+inf')
  out[#out + 1] = math.max(0, redis.call('PTTL', KEYS[i + 1]))
end
return out
"""
)
