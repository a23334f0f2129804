-- A rep's missed first-touch SLAs in a row, counted once per alert.
-- KEYS[1] misses  hash  rep -> breaches since their last touch in time
-- KEYS[2] seen    str   this alert was counted: the count it produced
-- ARGV: rep, reset (1: a touch in time), ttl s, away_after
-- Returns the rep's count after this alert. A replayed alert returns what it
-- returned the first time, so a retried batch makes the same decision.
local prior = redis.call('GET', KEYS[2])
if prior then
  return tonumber(prior)
end
local n = 0
if ARGV[2] ~= '1' then
  n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
if ARGV[2] == '1' or n >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], ARGV[1], 0)  -- set away (or touched in time): start again
end
redis.call('SET', KEYS[2], n, 'EX', ARGV[3])
return n
