-- Take n permits from a sliding-window log, on the server's clock (TIME): at most `limit`
-- permits fall in any window (x - window, x]. One member per permit, score = the microsecond it
-- is (or will be) used. Reserve mode always records the permits, at the earliest time t >= now,
-- and no earlier than the latest permit already recorded (reservations are served in order),
-- at which the window ending at t holds room for them; the caller waits until t. Try mode
-- records them only if t is now (nothing is written otherwise).
-- KEYS[1]  ZSET rs:ratelimit:{name}: member = '<now us>-<seq>', score = use time (us)
-- ARGV[1]  limit, permits per window (>= n)
-- ARGV[2]  window, microseconds
-- ARGV[3]  n, permits to take (>= 1)
-- ARGV[4]  mode: 'reserve' or 'try'
-- (Numbers are formatted with %.0f: Lua's own conversion keeps 14 digits, not microseconds.)
-- Returns  microseconds until the permits are the caller's: 0 = now; in try mode > 0 means
--          none were taken (retry after that long)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local at = now
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  at = math.max(at, tonumber(last[2]))
end
-- With the permits appended in time order, only the window ending at `at` can overflow: the
-- (limit - n + 1)-th newest permit must have left it.
local kth = redis.call('ZREVRANGE', KEYS[1], limit - n, limit - n, 'WITHSCORES')
if kth[2] then
  at = math.max(at, tonumber(kth[2]) + window)
end
if ARGV[4] == 'try' and at > now then
  return math.ceil(at - now)
end
local seq = redis.call('ZCARD', KEYS[1])
local args = {}
for i = 1, n do
  args[#args + 1] = string.format('%.0f', at)
  args[#args + 1] = string.format('%.0f-%d', now, seq + i)
end
redis.call('ZADD', KEYS[1], unpack(args))
redis.call('PEXPIRE', KEYS[1], math.ceil((at + window - now) / 1000) + 1000)
return math.ceil(at - now)
