-- Store a source's position (and meta) if the caller still holds the source's lease; a stored
-- position never moves back.
-- KEYS[1]  lease STRING  (rs:srclease:{src:<name>})
-- KEYS[2]  source HASH  (rs:source:{src:<name>}): position, meta, owner, updated_ms
-- ARGV[1]  owner id
-- ARGV[2]  position
-- ARGV[3]  meta ("" = leave it as it is)
-- ARGV[4]  now, epoch ms
-- Returns  1 when stored (or already at or past it), 0 when the lease is not the caller's
local function above(a, b)
  local n = math.min(#a, #b)
  for k = 1, n do
    local x, y = string.byte(a, k), string.byte(b, k)
    if x ~= y then
      return x > y
    end
  end
  return #a > #b
end

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local stored = redis.call('HGET', KEYS[2], 'position')
if stored and not above(ARGV[2], stored) then
  return 1
end
redis.call('HSET', KEYS[2], 'position', ARGV[2], 'owner', ARGV[1], 'updated_ms', ARGV[4])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'meta', ARGV[3])
end
return 1
