-- Append a source's records to one topic partition, each at most once ever: only records whose
-- position is above the partition's high-water mark for this source, which moves with them
-- (runs in the partition's slot; the same call run twice appends nothing the second time).
-- KEYS[1]  partition STREAM  (rs:stream:{T:i})
-- KEYS[2]  high-water mark STRING  (rs:srcpos:{T:i}:<source>)
-- ARGV[1]  approximate MAXLEN of the stream (0 = none)
-- ARGV[2..] the records in position order, each as: position, n (number of field/value items
--          that follow), the n items (the entry's wire fields)
-- Returns  the number of records appended

-- Positions compare byte by byte (Lua's < follows the server's collation locale).
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

local maxlen = tonumber(ARGV[1]) or 0
local mark = redis.call('GET', KEYS[2])
local appended = 0
local i = 2
while i <= #ARGV do
  local position = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  if not mark or above(position, mark) then
    local fields = {}
    for k = 1, n do
      fields[k] = ARGV[i + 1 + k]
    end
    if maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    else
      redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    mark = position
    appended = appended + 1
  end
  i = i + 2 + n
end
if appended > 0 then
  redis.call('SET', KEYS[2], mark)
end
return appended
