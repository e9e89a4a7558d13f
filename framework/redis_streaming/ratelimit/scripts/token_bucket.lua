-- Take n tokens from a token bucket, on the server's clock (TIME), so every process agrees.
-- The bucket holds at most `burst` tokens and refills at `rate` tokens per microsecond; a
-- missing key is a full bucket. Reserve mode always takes the tokens, letting the bucket go
-- into debt: the caller waits the returned time before using them, so reservations are served
-- in the order they were made and no one starves. Try mode takes them only if there are enough
-- now (nothing is written otherwise).
-- KEYS[1]  HASH rs:ratelimit:{name}: tokens (may be negative: reserved ahead), ts (us)
-- ARGV[1]  rate, tokens per microsecond (> 0)
-- ARGV[2]  burst (bucket capacity, >= n)
-- ARGV[3]  n, tokens to take (>= 1)
-- ARGV[4]  mode: 'reserve' or 'try'
-- Returns  microseconds until the tokens are the caller's: 0 = now; in try mode > 0 means
--          none were taken (retry after that long)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
end
if ARGV[4] == 'try' and tokens < n then
  return math.ceil((n - tokens) / rate)
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', string.format('%.0f', now))
-- Gone once it would be full again: a missing key is a full bucket.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate / 1000) + 1000)
if tokens >= 0 then
  return 0
end
return math.ceil(-tokens / rate)
