-- Delete a lease only if the caller holds it (compare-and-set).
-- KEYS[1]  lease STRING  (rs:lease:{T:i}:G)
-- ARGV[1]  consumer id
-- Returns  1 when deleted, 0 when it was not the caller's
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
