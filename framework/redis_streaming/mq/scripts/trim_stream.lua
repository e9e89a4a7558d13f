-- Trim a stream by retention, never past what a consumer group still needs (docs/design.md,
-- "Housekeeper").
-- The floor is the smallest pending id and the smallest last-delivered id over all groups of
-- the stream: entries at or after it are always kept. A stream without groups has no floor (its
-- retention alone applies). Reading the groups and trimming happen in one atomic step.
-- KEYS[1]  STREAM  (rs:stream:{T:i}, rs:redeliver:{T:i}:G or rs:dlq:{T})
-- ARGV[1]  max age in ms, 0 = none; the cutoff id is "<server TIME ms - age>-0"
-- ARGV[2]  max length, 0 = none
-- ARGV[3]  '1' = trim everything below the floor, whatever the retention (redelivery streams,
--          which only their group reads); '0' = retention capped by the floor
-- ARGV[4]  '~' approximate (whole radix-tree nodes only, so it trims less) or '=' exact
-- ARGV[5]  work bound: most entries walked to find the max-length cut, and the LIMIT of an
--          approximate XTRIM
-- ARGV[6..] groups that must have a position on the stream (the groups known on the topic);
--          when one has none yet it will read the stream from its start, so nothing is trimmed
-- Returns  {entries trimmed, 1 when the work bound stopped it short (call again) else 0}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {0, 0}
end
local max_age, max_len = tonumber(ARGV[1]), tonumber(ARGV[2])
local below_floor, mode, bound = ARGV[3] == '1', ARGV[4], tonumber(ARGV[5])

-- stream ids compared as decimal strings: sequence numbers may exceed a Lua number's precision
local function split(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return id, '0' end
  return string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
end
local function num_lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function id_lt(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  if am ~= bm then return num_lt(am, bm) end
  return num_lt(as, bs)
end

local floor = nil
local present = {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  present[info['name']] = true
  local low = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    local summary = redis.call('XPENDING', key, info['name'])
    if summary[2] and id_lt(summary[2], low) then low = summary[2] end
  end
  if floor == nil or id_lt(low, floor) then floor = low end
end
for i = 6, #ARGV do
  if not present[ARGV[i]] then return {0, 0} end
end

local function trim(strategy, threshold)
  if mode == '~' then
    return redis.call('XTRIM', key, strategy, '~', threshold, 'LIMIT', bound)
  end
  return redis.call('XTRIM', key, strategy, '=', threshold)
end

local age_cut = nil
if max_age > 0 then
  local t = redis.call('TIME')
  local cut_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - max_age
  if cut_ms > 0 then age_cut = string.format('%.0f', cut_ms) .. '-0' end
end

if floor == nil then
  if below_floor then return {0, 0} end
  local trimmed = 0
  if max_len > 0 then trimmed = trim('MAXLEN', max_len) end
  if age_cut then trimmed = trimmed + trim('MINID', age_cut) end
  if mode == '~' and trimmed >= bound then return {trimmed, 1} end
  return {trimmed, 0}
end

local target, busy = age_cut, 0
if below_floor then
  target = floor
elseif max_len > 0 then
  local excess = redis.call('XLEN', key) - max_len
  if excess > 0 then
    -- the max-length cut is the id of the entry at index `excess` (the first one kept); walk
    -- at most `bound` entries towards it, and stop early once past the floor (which then wins)
    local k = math.min(excess, bound)
    local len_cut, seen, start = nil, 0, '-'
    while len_cut == nil do
      local page = redis.call('XRANGE', key, start, '+', 'COUNT', math.min(100, k + 1 - seen))
      if #page == 0 then break end
      for _, e in ipairs(page) do
        seen = seen + 1
        if seen > k then
          len_cut = e[1]
          break
        end
      end
      if len_cut == nil then
        local last = page[#page][1]
        if not id_lt(last, floor) then
          len_cut = floor
        else
          start = '(' .. last
        end
      end
    end
    if len_cut then
      if excess > bound and id_lt(len_cut, floor) then busy = 1 end
      if target == nil or id_lt(target, len_cut) then target = len_cut end
    end
  end
end
if target == nil then
  return {0, busy}
end
if id_lt(floor, target) then target = floor end
local n = trim('MINID', target)
if mode == '~' and n >= bound then busy = 1 end
return {n, busy}
