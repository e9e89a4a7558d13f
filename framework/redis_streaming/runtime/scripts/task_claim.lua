-- A task starts on a partition: fence every earlier owner, including an earlier task of this
-- same consumer id (a restarted process reusing its id), by bumping the task's epoch.
-- KEYS[1]  lease STRING  (rs:lease:{T:i}:<job>.<stage>)
-- KEYS[2]  task HASH     (rs:task:{T:i}:<job>.<stage>)
-- ARGV[1]  consumer id
-- Returns  the new epoch (>= 1), or 0 when the caller does not hold the lease
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
return redis.call('HINCRBY', KEYS[2], 'epoch', 1)
