-- Refresh one consumer's membership of a group, drop expired members, list the live ones.
-- Uses the server's clock, so members on hosts with skewed clocks agree on expiry.
-- KEYS[1]  members ZSET of the group  (rs:members:{T}:G; score = expiry ms)
-- ARGV[1]  consumer id
-- ARGV[2]  membership ttl in milliseconds
-- Returns  the live member ids, sorted
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
return members
