-- Acknowledge published breaches: mark them alerted and release their claims.
-- KEYS: 1 inflight timers; ARGV: 1 lead key prefix, 2.. lead ids
for i = 2, #ARGV do
  local key = ARGV[1] .. ARGV[i]
  if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'breached', '1') end
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return #ARGV - 1
