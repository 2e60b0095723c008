"""The Lua scripts of the Redis limiter: each one atomic step on the Redis server's clock."""

from __future__ import annotations

__all__ = ["ACQUIRE_LUA", "REPORT_LUA"]

# KEYS[1] GCRA state, KEYS[2] pause end, KEYS[3] the sharing processes (a sorted set).
# ARGV[1] interval µs, ARGV[2] tolerance µs, ARGV[3] TTL slack ms, ARGV[4] this
# limiter's member name, or '' when it need not be counted this time, ARGV[5] how long
# (µs) a member counts after the moment it said it would ask again.
# Returns {w, n}: w = 0 when a slot was taken, else µs to wait before asking again (the
# pause's end, or when the bucket has room); n = the members counted (0 when ARGV[4] is
# ''). A member's score is when it will ask again, so one waiting out a long pause is
# still counted once it is back.
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  wait = math.ceil(paused - now)
else
  local interval = tonumber(ARGV[1])
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then
    tat = now
  end
  local allow_at = tat - tonumber(ARGV[2])
  if allow_at > now then
    wait = math.ceil(allow_at - now)
  else
    local new_tat = math.ceil(tat + interval)
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
               'PX', math.ceil((new_tat - now) / 1000) + tonumber(ARGV[3]))
  end
end
if ARGV[4] == '' then
  return {wait, 0}
end
local life = tonumber(ARGV[5])
redis.call('ZADD', KEYS[3], string.format('%.0f', now + wait), ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('(%.0f', now - life))
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[3],
           math.ceil((tonumber(last[2]) + life - now) / 1000) + tonumber(ARGV[3]))
return {wait, redis.call('ZCARD', KEYS[3])}
"""

# KEYS[1] pause end. ARGV[1] pause µs, ARGV[2] TTL slack ms. Returns {state, µs left}:
# state 2 = a new pause, 1 = an ongoing pause extended, 0 = already covered. Reports of
# one episode therefore merge into the latest end instead of adding up.
REPORT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause_end = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if pause_end <= paused then
  return {0, math.ceil(paused - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', pause_end),
           'PX', math.ceil(tonumber(ARGV[1]) / 1000) + tonumber(ARGV[2]))
if paused > now then
  return {1, math.ceil(pause_end - now)}
end
return {2, math.ceil(pause_end - now)}
"""
