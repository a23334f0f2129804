-- Apply a rep's status change unless a newer one was already applied (events on
-- the reps topic may be replayed or arrive out of order across partitions).
-- KEYS: 1 status hash, 2 status-time hash; ARGV: 1 rep, 2 status, 3 occurred_ms
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if tonumber(ARGV[3]) <= seen then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
