-- Change an existing topic's metadata: grow its partition count (never shrink) and/or set its
-- retention. Atomic, so concurrent growers cannot lower the count or lose each other's growth.
-- KEYS[1]  topic meta HASH  (rs:topic:{T})
-- ARGV[1]  partitions wanted (0 = leave the count as it is)
-- ARGV[2]  retention_max_len     ('' = leave as it is)
-- ARGV[3]  retention_max_age_ms  ('' = leave as it is)
-- Returns  {status, previous partitions, partitions, created_ms, retention_max_len,
--          retention_max_age_ms}, the last four as the topic now is. status: 1 = changed as
--          asked, 0 = nothing changed because the topic already has at least ARGV[1]
--          partitions, -1 = no such topic (nothing written)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0, 0, '0', '0', '0'}
end
local previous = tonumber(redis.call('HGET', KEYS[1], 'partitions')) or 1
local wanted = tonumber(ARGV[1])
if wanted > 0 then
  if wanted <= previous then
    local m = redis.call('HMGET', KEYS[1], 'created_ms', 'retention_max_len',
                         'retention_max_age_ms')
    return {0, previous, previous, m[1] or '0', m[2] or '0', m[3] or '0'}
  end
  redis.call('HSET', KEYS[1], 'partitions', wanted)
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'retention_max_len', ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'retention_max_age_ms', ARGV[3])
end
local m = redis.call('HMGET', KEYS[1], 'partitions', 'created_ms', 'retention_max_len',
                     'retention_max_age_ms')
return {1, previous, tonumber(m[1]) or 1, m[2] or '0', m[3] or '0', m[4] or '0'}
