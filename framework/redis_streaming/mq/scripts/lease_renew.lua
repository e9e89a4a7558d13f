-- Extend a lease only if the caller still holds it (compare-and-set).
-- KEYS[1]  lease STRING  (rs:lease:{T:i}:G)
-- ARGV[1]  consumer id
-- ARGV[2]  ttl in milliseconds
-- Returns  1 when extended, 0 when the lease is gone or held by another consumer
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
