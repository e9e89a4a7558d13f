-- Delete consumer names of a group that hold no pending entry and have been idle long enough,
-- checking and deleting in one atomic step. XGROUP DELCONSUMER drops the name's pending entries
-- with it, so an entry delivered to the name between a separate check (XINFO CONSUMERS) and the
-- delete would be lost: acknowledged by nobody, pending nowhere, never read again. Done here, a
-- read or claim by that name which reaches the server after the delete creates the name again
-- with its entries pending (also a read that was already blocked when the name was deleted).
-- KEYS[1]  STREAM  (rs:stream:{T:i} or rs:redeliver:{T:i}:G)
-- ARGV[1]  group
-- ARGV[2]  min idle in ms: a name whose XINFO CONSUMERS 'idle' is lower is kept
-- ARGV[3..] the consumer names to delete
-- Returns  the number of names deleted (none when the stream or the group does not exist)
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if consumers['err'] then
  local err = consumers['err']
  if string.find(err, 'NOGROUP', 1, true) or string.find(err, 'no such key', 1, true) then
    return 0
  end
  return consumers
end
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
local min_idle = tonumber(ARGV[2])
local deleted = 0
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  local name = info['name']
  if wanted[name] and tonumber(info['pending']) == 0 and tonumber(info['idle']) >= min_idle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    deleted = deleted + 1
  end
end
return deleted
