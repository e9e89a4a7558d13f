-- Take a partition lease if it is free, or extend it if this consumer already holds it.
-- KEYS[1]  lease STRING  (rs:lease:{T:i}:G)
-- ARGV[1]  consumer id
-- ARGV[2]  ttl in milliseconds
-- Returns  1 when the caller holds the lease now, 0 when another consumer does
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
