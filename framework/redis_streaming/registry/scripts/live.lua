-- List the live (not expired) instances of a service, by the server clock (read only).
-- KEYS[1]  instances ZSET of the service  (rs:svc:{S}:instances; score = expiry ms, inf = persistent)
-- Returns  {server time ms, id, expiry, id, expiry, ...} in id order; expiry is the ZSET score
--          as a string ('inf' for persistent instances)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local flat = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local pairs_ = {}
for i = 1, #flat, 2 do pairs_[#pairs_ + 1] = {flat[i], flat[i + 1]} end
table.sort(pairs_, function(a, b) return a[1] < b[1] end)
local out = {now}
for _, p in ipairs(pairs_) do
  out[#out + 1] = p[1]
  out[#out + 1] = p[2]
end
return out
