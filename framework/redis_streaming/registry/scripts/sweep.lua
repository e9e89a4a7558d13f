-- Remove expired instances of one service and publish one REMOVED event for each, atomically.
-- Every candidate is checked again against the server clock here, so concurrent sweepers (and a
-- heartbeat that renewed a candidate meanwhile) never cause a double removal or a false one.
-- KEYS[1]       instances ZSET of the service  (rs:svc:{S}:instances; score = expiry ms)
-- KEYS[2..n+1]  the candidates' instance HASHes (rs:svc:{S}:i:<id>), in the order of the ids
-- ARGV[1]       events channel                 (rs:svc:{S}:events)
-- ARGV[2]       service name
-- ARGV[3..n+2]  candidate instance ids
-- Returns       {removed, instances left in the ZSET}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local removed = 0
for i = 3, #ARGV do
  local id, hash = ARGV[i], KEYS[i - 1]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and score ~= 'inf' and tonumber(score) <= now then
    local flat = redis.call('HGETALL', hash)
    redis.call('DEL', hash)
    redis.call('ZREM', KEYS[1], id)
    local event = {type = 'REMOVED', service = ARGV[2], instance_id = id, ts = now}
    if #flat > 0 then
      local fields = {}
      for j = 1, #flat, 2 do fields[flat[j]] = flat[j + 1] end
      event.instance = fields
    end
    redis.call('PUBLISH', ARGV[1], cjson.encode(event))
    removed = removed + 1
  end
end
return {removed, redis.call('ZCARD', KEYS[1])}
