-- Apply a run of one task's outbox entries in one target slot, each at most once ever (the
-- Redis Cluster half of the exactly-once commit; runs in the TARGET's slot): appends to a
-- partition stream (outputs) and Redis sink writes to keys with the same hash tag.
-- KEYS[1]  target partition STREAM  (rs:stream:{U:j}; any key of the slot when unused)
-- KEYS[2]  forwarder high-water marks HASH  (rs:fwd:{U:j}:<job>); field = source task,
--          value = the last outbox entry id applied in this slot from it
-- KEYS[3..] keys written by sink entries (same hash tag as KEYS[2])
-- ARGV[1]  source task  (<stage>|<topic>:<i>)
-- ARGV[2]  approximate MAXLEN of KEYS[1] (0 = none)
-- ARGV[3..] the entries, oldest first, each as either
--          outbox entry id, n, n items: appended to KEYS[1] (the target entry's fields), or
--          outbox entry id, op, k, n, n items: op (HSET HDEL SADD SREM ZADD ZREM SET DEL) on
--          KEYS[k] with the n items as its arguments
-- Returns  the number of entries applied. An entry whose outbox id is at or below the source's
--          high-water mark was applied before and is skipped, so the same call run twice (or
--          by two forwarders) applies nothing the second time.

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

local OPS = {HSET = true, HDEL = true, SADD = true, SREM = true, ZADD = true, ZREM = true,
             SET = true, DEL = true}
local appended = 0
local last = nil
local i = 3
while i <= #ARGV do
  local id = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local op, first = nil, i + 2  -- first: the index of the entry's first item
  if not n then
    op = ARGV[i + 1]
    if not OPS[op] then
      return redis.error_reply('ERR forward: unknown op ' .. tostring(op))
    end
    n = tonumber(ARGV[i + 3])
    first = i + 4
  end
  local parsed = parse(id)
  if parsed.err then
    return parsed
  end
  if hwm == nil or not at_or_below(parsed, hwm) then
    local fields = {}
    for k = 1, n do
      fields[k] = ARGV[first - 1 + k]
    end
    if op then
      -- A write that fails (WRONGTYPE) ends the call: what was applied before it is recorded,
      -- so a retry (the forwarder retries with backoff) applies nothing twice.
      local ok = redis.pcall(op, KEYS[tonumber(ARGV[i + 2])], unpack(fields))
      if type(ok) == 'table' and ok.err then
        if last then
          redis.call('HSET', KEYS[2], source, last)
        end
        return ok
      end
    elseif maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    else
      redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    hwm = parsed
    last = id
    appended = appended + 1
  end
  i = first + n
end
if last then
  redis.call('HSET', KEYS[2], source, last)
end
return appended
