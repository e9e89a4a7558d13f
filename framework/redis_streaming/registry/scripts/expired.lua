-- List the instances of a service whose expiry has passed (read only; the sweep removes them).
-- KEYS[1]  instances ZSET of the service  (rs:svc:{S}:instances; score = expiry ms)
-- ARGV[1]  most ids to return
-- Returns  {instances in the ZSET, expired id, ...}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
table.insert(ids, 1, redis.call('ZCARD', KEYS[1]))
return ids
