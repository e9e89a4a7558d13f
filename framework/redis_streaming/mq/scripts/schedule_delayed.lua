-- Schedule a producer-delayed message, due after a delay measured on the server's clock
-- (so producer and mover hosts need not agree on the time).
-- KEYS[1]  delayed ZSET of the partition  (rs:delayed:{T:i})
-- ARGV[1]  delay in milliseconds
-- ARGV[2]  envelope: netstrings "<len>:<bytes>," of a unique id, then field, value, ...
-- Returns  the due time, epoch ms
local t = redis.call('TIME')
local due = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], due, ARGV[2])
return due
