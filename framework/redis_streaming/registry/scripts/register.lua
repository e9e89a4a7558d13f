-- Register an instance, or renew its heartbeat; re-registers it when it expired or was removed.
-- Expiry is on the Redis server's clock, so hosts with skewed clocks agree.
-- KEYS[1]  instances ZSET of the service  (rs:svc:{S}:instances; score = expiry ms, +inf = persistent)
-- KEYS[2]  instance HASH                  (rs:svc:{S}:i:<id>)
-- ARGV[1]  mode: 'register' or 'heartbeat'
-- ARGV[2]  events channel                 (rs:svc:{S}:events)
-- ARGV[3]  ttl ms; 0 = persistent (never expires)
-- ARGV[4]  expiry of the hash itself in ms, a safety net should no sweeper run; 0 = none
-- ARGV[5..] the instance's field, value pairs (service and instance_id among them)
-- Returns  {outcome, expiry ms or -1 when persistent}; outcome:
--          0 = renewed or unchanged (no event), 1 = added (ADDED published),
--          2 = a live registration replaced by different data (UPDATED published)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local mode, channel = ARGV[1], ARGV[2]
local ttl, hash_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])

local new = {}
for i = 5, #ARGV, 2 do new[ARGV[i]] = ARGV[i + 1] end

local score = redis.call('ZSCORE', KEYS[1], new.instance_id)
local live = score and (score == 'inf' or tonumber(score) > now)
local old = {}
if live then
  local flat = redis.call('HGETALL', KEYS[2])
  for i = 1, #flat, 2 do old[flat[i]] = flat[i + 1] end
  if #flat == 0 then live = false end
end

local expiry = -1
local function renew()
  if ttl > 0 then
    expiry = now + ttl
    redis.call('ZADD', KEYS[1], expiry, new.instance_id)
  else
    redis.call('ZADD', KEYS[1], '+inf', new.instance_id)
  end
  if hash_ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], hash_ttl)
  else
    redis.call('PERSIST', KEYS[2])
  end
end

local outcome = 0
if live then
  local same = true
  if mode == 'register' then
    for k, v in pairs(new) do if old[k] ~= v then same = false end end
  end
  if not same then
    redis.call('DEL', KEYS[2])
    for k, v in pairs(new) do redis.call('HSET', KEYS[2], k, v) end
    redis.call('HSET', KEYS[2], 'registered_ms', old.registered_ms or now, 'updated_ms', now)
    outcome = 2
  end
else
  redis.call('DEL', KEYS[2])
  for k, v in pairs(new) do redis.call('HSET', KEYS[2], k, v) end
  redis.call('HSET', KEYS[2], 'registered_ms', now, 'updated_ms', now)
  outcome = 1
end
renew()

if outcome > 0 then
  local fields = {}
  local flat = redis.call('HGETALL', KEYS[2])
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  local kind = outcome == 1 and 'ADDED' or 'UPDATED'
  redis.call('PUBLISH', channel, cjson.encode({type = kind, service = new.service,
    instance_id = new.instance_id, ts = now, instance = fields}))
end
return {outcome, expiry}
