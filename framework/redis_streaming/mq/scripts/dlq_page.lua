-- One page of a dead-letter stream, newest first, every value cut short on the server: a DLQ
-- page shows the start of each payload, so whole payloads and tracebacks (megabytes each) are
-- never sent. Bounded per call (entries and bytes read, bytes returned) and resumable from the
-- cursor; entries are read a few at a time, so large ones are held only briefly.
-- KEYS[1]  the dead-letter stream (rs:dlq:{T})
-- ARGV[1]  start below this entry id (exclusive); '' = at the newest entry
-- ARGV[2]  most entries to return
-- ARGV[3]  only entries whose dlq_group is this ('' = every group)
-- ARGV[4]  bytes of the payload returned (its full size is returned too)
-- ARGV[5]  bytes of any other field returned (dlq_traceback is never returned)
-- ARGV[6]  stop once the names and values returned add up to this many bytes
-- ARGV[7]  most entries to read in this call (matching the group or not)
-- ARGV[8]  stop once the entries read add up to this many bytes (whole, before the cut)
-- Returns  {cursor, entries read, entry, entry, ...}; cursor is the id of the last entry read,
--          or '' when the oldest entry has been read; an entry is {id, payload size, name,
--          value, ...}
local key, group = KEYS[1], ARGV[3]
local want, preview, field_max = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local budget, scan, read_max = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local upper = '+'
if ARGV[1] ~= '' then upper = '(' .. ARGV[1] end
local out, found, returned, read, read_bytes, cursor = {'', 0}, 0, 0, 0, 0, ARGV[1]
while read < scan and found < want and returned < budget and read_bytes < read_max do
  -- a few entries at a time, as many as the bytes left to read allow at the size seen so far
  local step = 1
  if read > 0 then
    step = math.floor((read_max - read_bytes) * read / math.max(read_bytes, 1))
  end
  step = math.max(1, math.min(16, scan - read, step))
  local batch = redis.call('XREVRANGE', key, upper, '-', 'COUNT', step)
  local last = 0
  for i, e in ipairs(batch) do
    read, last = read + 1, i
    cursor = e[1]
    local fields = e[2]
    for j = 2, #fields, 2 do read_bytes = read_bytes + #fields[j] end
    local match = group == ''
    if not match then
      for j = 1, #fields, 2 do
        if fields[j] == 'dlq_group' then
          match = fields[j + 1] == group
          break
        end
      end
    end
    if match then
      local entry = {e[1], 0}
      for j = 1, #fields, 2 do
        local name, value = fields[j], fields[j + 1]
        if name == 'payload' then
          entry[2] = #value
          value = string.sub(value, 1, preview)
        elseif name == 'dlq_traceback' then
          value = nil
        elseif #value > field_max then
          value = string.sub(value, 1, field_max)
        end
        if value then
          entry[#entry + 1] = name
          entry[#entry + 1] = value
          returned = returned + #name + #value
        end
      end
      out[#out + 1] = entry
      found = found + 1
      if found >= want or returned >= budget then break end
    end
    if read_bytes >= read_max then break end
  end
  out[2] = read
  if #batch < step and last == #batch then  -- a short batch read to its end: nothing is older
    out[1] = ''
    return out
  end
  upper = '(' .. cursor
end
out[1] = cursor
return out
