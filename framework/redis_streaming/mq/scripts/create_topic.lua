-- Create a topic's metadata hash unless it exists (first writer wins).
-- KEYS[1]  topic meta HASH   (rs:topic:{T})
-- ARGV[1]  partitions
-- ARGV[2]  retention_max_len     (0 = unlimited)
-- ARGV[3]  retention_max_age_ms  (0 = unlimited)
-- Returns  {created (1|0), partitions, created_ms, retention_max_len, retention_max_age_ms}
--          describing the topic as it now is. created_ms is the server's clock.
if redis.call('EXISTS', KEYS[1]) == 1 then
  local m = redis.call('HMGET', KEYS[1], 'partitions', 'created_ms', 'retention_max_len',
                       'retention_max_age_ms')
  return {0, m[1], m[2], m[3] or '0', m[4] or '0'}
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[1], 'partitions', ARGV[1], 'created_ms', now,
           'retention_max_len', ARGV[2], 'retention_max_age_ms', ARGV[3])
return {1, ARGV[1], tostring(now), ARGV[2], ARGV[3]}
