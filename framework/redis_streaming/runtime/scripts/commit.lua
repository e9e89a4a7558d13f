-- Commit one batch of a stage's task, atomically (docs/design.md, "Stream-processing runtime:
-- the commit"): fence by lease and epoch, skip a batch already committed, apply the state
-- writes, sweep expired keys, append the outputs, move the timers and the clock, acknowledge
-- the batch and record the frontier. A batch of no entries (n = 0) is a tick: timers fired by
-- the clock alone (an idle partition's watermark, wall-clock timers).
-- KEYS[1]  lease STRING   (rs:lease:{T:i}:<group>)
-- KEYS[2]  task HASH      (rs:task:{T:i}:<group>)
-- KEYS[3]  input STREAM   (rs:stream:{T:i})
-- KEYS[4..] state HASHes, TTL index ZSETs, output STREAMs (or the outbox), keys written by
--          Redis sinks and timer ZSETs, by index below
-- ARGV[1]  consumer id          ARGV[2]  epoch of the task
-- ARGV[3]  group                ARGV[4]  now (epoch ms)
-- ARGV[5]  n: ids to acknowledge, then the n ids (in order; the first is the batch's first);
--          for a tick (n = 0) instead one value: the task's tick count it expects (field 'ticks')
-- then     r: Redis sink writes (standalone server only; on a cluster they are outbox outputs
--          below), then (when r > 0) one string packing them all (commit.py's _pack_write),
--          each as: struct '<I4I4' key index and m, then m length-prefixed strings: the command
--          (HSET HDEL SADD SREM ZADD ZREM SET DEL) and its arguments after the key
-- then     s: state stores written, each as: hash key index, TTL key index,
--          w writes, each as: 's' field value expiry_ms (0: none) | 'd' field
-- then     e: TTL sweeps, each as: hash key index, TTL key index (up to 100 expired keys each)
-- then     o: outputs, then (when o > 0) one string packing them all (commit.py's _pack_output;
--          one argument instead of m + 3 each, as redis-py's per-argument cost dominates),
--          each as: struct '<I4I4' stream key index and m, then MAXLEN (0: none) and the m
--          field/value items, each a struct '<I4c0' length-prefixed string
-- then     z: timer sets changed, each as: key index, p, p (member, score) pairs, d, d members
-- then     'c' max_ts wm_floor (the clock to store) | '-' (no clock)
-- Returns  {'FENCED'} when the lease or epoch is not the caller's (nothing changed);
--          {'ALREADY'} when the batch's first entry is no longer pending (it committed);
--          {'OK', key count of each written store after the sweeps, in order}
if redis.call('GET', KEYS[1]) ~= ARGV[1]
    or redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[2] then
  return {'FENCED'}
end
local group = ARGV[3]
local now = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
-- Committed entries were acknowledged in the same step as their effects, so an entry that is
-- no longer pending belongs to a committed batch (a retry after a lost reply).
if n > 0 and #redis.call('XPENDING', KEYS[3], group, ARGV[6], ARGV[6], 1) == 0 then
  return {'ALREADY'}
end
-- A tick has no entries to tell it committed: it counts itself, so a tick whose reply was lost
-- and that is sent again (redis-py retries after a lost connection) changes nothing.
if n == 0 then
  if (redis.call('HGET', KEYS[2], 'ticks') or '0') ~= ARGV[6] then
    return {'ALREADY'}
  end
  redis.call('HINCRBY', KEYS[2], 'ticks', 1)
end
local pos = 6 + math.max(n, 1)
-- Redis sink writes first: one that fails (WRONGTYPE) stops the script before any other
-- effect, and those applied before it are upserts, the same again when the batch is retried.
local sink_writes = tonumber(ARGV[pos]); pos = pos + 1
if sink_writes > 0 then
  local packed, at, formats = ARGV[pos], 1, {}
  local allowed = {HSET = true, HDEL = true, SADD = true, SREM = true, ZADD = true, ZREM = true,
                   SET = true, DEL = true}
  for _ = 1, sink_writes do
    local index, m
    index, m, at = struct.unpack('<I4I4', packed, at)
    local format = formats[m]
    if not format then
      format = '<' .. string.rep('I4c0', m)
      formats[m] = format
    end
    local items = {struct.unpack(format, packed, at)}
    at = table.remove(items)
    local op = table.remove(items, 1)
    if not allowed[op] then
      return redis.error_reply('ERR commit: a sink write may not run ' .. tostring(op))
    end
    redis.call(op, KEYS[index], unpack(items))
  end
  pos = pos + 1
end
local written = {}
local stores = tonumber(ARGV[pos]); pos = pos + 1
for _ = 1, stores do
  local hash = KEYS[tonumber(ARGV[pos])]
  local ttl = KEYS[tonumber(ARGV[pos + 1])]
  local writes = tonumber(ARGV[pos + 2])
  pos = pos + 3
  for _ = 1, writes do
    if ARGV[pos] == 's' then
      redis.call('HSET', hash, ARGV[pos + 1], ARGV[pos + 2])
      if ARGV[pos + 3] ~= '0' then
        redis.call('ZADD', ttl, now + tonumber(ARGV[pos + 3]), ARGV[pos + 1])
      else
        redis.call('ZREM', ttl, ARGV[pos + 1])
      end
      pos = pos + 4
    else
      redis.call('HDEL', hash, ARGV[pos + 1])
      redis.call('ZREM', ttl, ARGV[pos + 1])
      pos = pos + 2
    end
  end
  written[#written + 1] = hash
end
local sweeps = tonumber(ARGV[pos]); pos = pos + 1
for _ = 1, sweeps do
  local hash, ttl = KEYS[tonumber(ARGV[pos])], KEYS[tonumber(ARGV[pos + 1])]
  pos = pos + 2
  local expired = redis.call('ZRANGEBYSCORE', ttl, '-inf', now, 'LIMIT', 0, 100)
  for _, field in ipairs(expired) do
    redis.call('HDEL', hash, field)
    redis.call('ZREM', ttl, field)
  end
end
-- Key counts after the sweeps, so expired keys are not counted.
local result = {'OK'}
for _, hash in ipairs(written) do
  result[#result + 1] = redis.call('HLEN', hash)
end
local outputs = tonumber(ARGV[pos]); pos = pos + 1
if outputs > 0 then
  local packed, at, formats = ARGV[pos], 1, {}
  for _ = 1, outputs do
    local index, m
    index, m, at = struct.unpack('<I4I4', packed, at)
    local format = formats[m]
    if not format then
      format = '<' .. string.rep('I4c0', m + 1)
      formats[m] = format
    end
    local items = {struct.unpack(format, packed, at)}
    at = table.remove(items)
    local maxlen = table.remove(items, 1)
    if maxlen ~= '0' then
      redis.call('XADD', KEYS[index], 'MAXLEN', '~', maxlen, '*', unpack(items))
    else
      redis.call('XADD', KEYS[index], '*', unpack(items))
    end
  end
  pos = pos + 1
end
local timer_sets = tonumber(ARGV[pos]); pos = pos + 1
for _ = 1, timer_sets do
  local zset, puts = KEYS[tonumber(ARGV[pos])], tonumber(ARGV[pos + 1])
  pos = pos + 2
  for _ = 1, puts do
    redis.call('ZADD', zset, ARGV[pos + 1], ARGV[pos])
    pos = pos + 2
  end
  local dels = tonumber(ARGV[pos]); pos = pos + 1
  for _ = 1, dels do
    redis.call('ZREM', zset, ARGV[pos])
    pos = pos + 1
  end
end
if ARGV[pos] == 'c' then
  redis.call('HSET', KEYS[2], 'max_ts', ARGV[pos + 1], 'wm_floor', ARGV[pos + 2])
end
if n > 0 then
  for i = 6, 5 + n, 1000 do
    redis.call('XACK', KEYS[3], group, unpack(ARGV, i, math.min(i + 999, 5 + n)))
  end
  redis.call('HSET', KEYS[2], 'frontier', ARGV[5 + n], 'committed_ms', now)
else
  redis.call('HSET', KEYS[2], 'committed_ms', now)
end
return result
