-- Change fields of a live instance (metadata, weight, healthy); publish UPDATED if any changed.
-- KEYS[1]  instances ZSET of the service  (rs:svc:{S}:instances; score = expiry ms)
-- KEYS[2]  instance HASH                  (rs:svc:{S}:i:<id>)
-- ARGV[1]  events channel                 (rs:svc:{S}:events)
-- ARGV[2]  instance id
-- ARGV[3..] field, value pairs to set
-- Returns  nil when the instance is not registered (or expired), else
--          {changed (0/1), the hash's field, value pairs after the change}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not (score and (score == 'inf' or tonumber(score) > now)) then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then return false end

local changed = 0
for i = 3, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) ~= ARGV[i + 1] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    changed = 1
  end
end
local flat = redis.call('HGETALL', KEYS[2])
if changed == 1 then
  redis.call('HSET', KEYS[2], 'updated_ms', now)
  flat = redis.call('HGETALL', KEYS[2])
  local fields = {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  redis.call('PUBLISH', ARGV[1], cjson.encode({type = 'UPDATED', service = fields.service,
    instance_id = ARGV[2], ts = now, instance = fields}))
end
return {changed, flat}
