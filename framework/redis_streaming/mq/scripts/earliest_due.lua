-- The server's time and the earliest due time of each delayed ZSET, in one call: a delayed
-- mover's idle pass. Single server only: the keys are in different cluster slots (on a cluster
-- the mover sends one ZRANGE per key instead).
-- KEYS     delayed ZSETs
-- Returns  {now_ms, due_1, ..., due_n}; due_i is -1 when KEYS[i] is empty
local t = redis.call('TIME')
local out = {t[1] * 1000 + math.floor(t[2] / 1000)}
for i, key in ipairs(KEYS) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then
    out[i + 1] = -1
  else
    out[i + 1] = tonumber(first[2])
  end
end
return out
