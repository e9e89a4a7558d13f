-- Count the entries of a stream with an id greater than a given one: a group's lag when XINFO
-- GROUPS cannot tell it (after XDEL, or after XGROUP SETID to an id inside the stream). Walks
-- from both ends at once, so the work follows the smaller side: the entries after the id, or
-- the entries up to it (then the answer is XLEN minus those). Bounded per call and resumable:
-- pass the returned cursors to the next call.
-- KEYS[1]  STREAM
-- ARGV[1]  the id (e.g. a group's last-delivered id)
-- ARGV[2]  most entries to walk on each side in this call
-- ARGV[3]  "after" cursor: last id counted after ARGV[1] ('' = start right after ARGV[1])
-- ARGV[4]  entries counted after ARGV[1] so far (0 at first)
-- ARGV[5]  "before" cursor: last id counted up to ARGV[1] ('' = start at the beginning)
-- ARGV[6]  entries counted up to ARGV[1] so far (0 at first)
-- Returns  {1, count} when done; else {0, after cursor, after count, before cursor,
--          before count}, to be passed as ARGV[3..6] of the next call
local key, id, bound = KEYS[1], ARGV[1], tonumber(ARGV[2])
local a_cur, a_n, b_cur, b_n = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local walked = 0
while walked < bound do
  local step = math.min(100, bound - walked)
  local a_start = '(' .. id
  if a_cur ~= '' then a_start = '(' .. a_cur end
  local page = redis.call('XRANGE', key, a_start, '+', 'COUNT', step)
  a_n = a_n + #page
  if #page < step then
    return {1, a_n}
  end
  a_cur = page[#page][1]
  local b_start = '-'
  if b_cur ~= '' then b_start = '(' .. b_cur end
  page = redis.call('XRANGE', key, b_start, id, 'COUNT', step)
  b_n = b_n + #page
  if #page < step then
    return {1, redis.call('XLEN', key) - b_n}
  end
  b_cur = page[#page][1]
  walked = walked + step
end
return {0, a_cur, a_n, b_cur, b_n}
