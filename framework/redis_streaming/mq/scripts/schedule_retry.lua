-- Schedule a group's retry of a failed entry and acknowledge the entry, atomically: a crash can
-- never lose the message between the two (DESIGN section 7).
-- KEYS[1]  retry ZSET of the group on the partition  (rs:retry:{T:i}:G)
-- KEYS[2]  stream the entry was read from (rs:stream:{T:i} or rs:redeliver:{T:i}:G)
-- ARGV[1]  group
-- ARGV[2]  entry id to acknowledge
-- ARGV[3]  delay in milliseconds (server clock)
-- ARGV[4]  retry envelope (netstrings: unique id, then field, value, ...)
-- Returns  the due time, epoch ms
local t = redis.call('TIME')
local due = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], due, ARGV[4])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return due
