-- Schedule a group's retry of a failed entry and acknowledge the entry, atomically: a crash can
-- never lose the message between the two (docs/design.md, "Retries and dead letters"). A retry
-- that is due at once skips the retry set and goes straight to the group's redelivery stream.
-- KEYS[1]  retry ZSET of the group on the partition  (rs:retry:{T:i}:G)
-- KEYS[2]  stream the entry was read from (rs:stream:{T:i} or rs:redeliver:{T:i}:G)
-- KEYS[3]  redelivery STREAM of the group on the partition  (rs:redeliver:{T:i}:G)
-- ARGV[1]  group
-- ARGV[2]  entry id to acknowledge
-- ARGV[3]  delay in milliseconds (server clock)
-- ARGV[4]  retry envelope (netstrings: unique id, then field, value, ...)
-- Returns  the due time, epoch ms
local t = redis.call('TIME')
local delay = tonumber(ARGV[3])
local due = t[1] * 1000 + math.floor(t[2] / 1000) + delay
if delay > 0 then
  redis.call('ZADD', KEYS[1], due, ARGV[4])
else
  local args = {'XADD', KEYS[3], '*'}
  local member = ARGV[4]
  local pos, n, first = 1, #member, true
  while pos <= n do
    local colon = string.find(member, ':', pos, true)
    local len = tonumber(string.sub(member, pos, colon - 1))
    if not first then
      args[#args + 1] = string.sub(member, colon + 1, colon + len)
    end
    first = false
    pos = colon + len + 2
  end
  redis.call(unpack(args))
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return due
