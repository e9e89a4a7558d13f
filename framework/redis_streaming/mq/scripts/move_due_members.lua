-- Move the due members of a ZSET into a stream, atomically: a member is appended and removed in
-- one step, so two movers running at once never append it twice. Serves producer-delayed
-- messages (delayed set -> partition stream) and retries (retry set -> redelivery stream).
-- KEYS[1]  ZSET of scheduled members (score = due ms; member = envelope, see
--          schedule_delayed.lua and schedule_retry.lua)
-- KEYS[2]  target STREAM
-- ARGV[1]  most members to move in this call
-- ARGV[2]  approximate MAXLEN of the stream (0 = no trimming)
-- Returns  {moved, next_due_ms}; next_due_ms is -1 when nothing else is scheduled
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local maxlen = tonumber(ARGV[2])
for _, member in ipairs(due) do
  local args = {'XADD', KEYS[2]}
  if maxlen > 0 then
    args[#args + 1] = 'MAXLEN'
    args[#args + 1] = '~'
    args[#args + 1] = maxlen
  end
  args[#args + 1] = '*'
  -- netstrings: the first is the envelope's unique id, the rest are field, value pairs
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
  redis.call('ZREM', KEYS[1], member)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then
  return {#due, -1}
end
return {#due, tonumber(nxt[2])}
