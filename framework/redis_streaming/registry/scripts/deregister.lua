-- Remove one instance at once and publish REMOVED (with its last data).
-- KEYS[1]  instances ZSET of the service  (rs:svc:{S}:instances)
-- KEYS[2]  instance HASH                  (rs:svc:{S}:i:<id>)
-- ARGV[1]  events channel                 (rs:svc:{S}:events)
-- ARGV[2]  service name
-- ARGV[3]  instance id
-- Returns  {removed (0/1), instances left in the ZSET}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local removed = 0
local flat = redis.call('HGETALL', KEYS[2])
if redis.call('ZREM', KEYS[1], ARGV[3]) == 1 or #flat > 0 then
  redis.call('DEL', KEYS[2])
  local event = {type = 'REMOVED', service = ARGV[2], instance_id = ARGV[3], ts = now}
  if #flat > 0 then
    local fields = {}
    for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
    event.instance = fields
  end
  redis.call('PUBLISH', ARGV[1], cjson.encode(event))
  removed = 1
end
return {removed, redis.call('ZCARD', KEYS[1])}
