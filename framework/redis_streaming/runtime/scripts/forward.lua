-- Append a run of one task's outbox entries to one target partition, each at most once ever
-- (the Redis Cluster half of the exactly-once commit; runs in the TARGET's slot).
-- KEYS[1]  target partition STREAM  (rs:stream:{U:j})
-- KEYS[2]  forwarder high-water marks HASH  (rs:fwd:{U:j}:<job>); field = source task,
--          value = the last outbox entry id appended to KEYS[1] from it
-- ARGV[1]  source task  (<stage>|<topic>:<i>)
-- ARGV[2]  approximate MAXLEN of the target (0 = none)
-- ARGV[3..] the entries, oldest first, each as: outbox entry id, n (number of field/value
--          items that follow), the n items (the target entry's fields, in order)
-- Returns  the number of entries appended. An entry whose outbox id is at or below the source's
--          high-water mark was appended before and is skipped, so the same call run twice (or
--          by two forwarders) appends nothing the second time.

-- Stream ids compare as two unsigned integers (ms, then seq); their decimal strings compare
-- exactly by length, then text (Lua numbers lose precision above 2^53).
local function less(a, b)
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if not ms then
    return redis.error_reply('ERR forward: bad outbox entry id ' .. tostring(id))
  end
  return {ms, seq}
end

-- a <= b for parsed ids
local function at_or_below(a, b)
  if a[1] ~= b[1] then
    return less(a[1], b[1])
  end
  return not less(b[2], a[2])
end

local source = ARGV[1]
local maxlen = tonumber(ARGV[2]) or 0
local mark = redis.call('HGET', KEYS[2], source)
local hwm = nil
if mark then
  hwm = parse(mark)
  if hwm.err then
    return hwm
  end
end

local appended = 0
local last = nil
local i = 3
while i <= #ARGV do
  local id = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local parsed = parse(id)
  if parsed.err then
    return parsed
  end
  if hwm == nil or not at_or_below(parsed, hwm) then
    local fields = {}
    for k = 1, n do
      fields[k] = ARGV[i + 1 + k]
    end
    if maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    else
      redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    hwm = parsed
    last = id
    appended = appended + 1
  end
  i = i + 2 + n
end
if last then
  redis.call('HSET', KEYS[2], source, last)
end
return appended
