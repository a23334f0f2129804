-- Record a routing decision atomically: the assignment record, the pool's rotation
-- state, the rep's open and daily counts and the SLA timer in one step, or nothing.
-- KEYS: 1 lead hash, 2 pool hash, 3 open counts, 4 due timers, 5 last-assigned,
--       6 daily counts, 7 retry queue (zset), 8 outbox (list)
-- ARGV: 1 status (assigned|queued), 2 rep, 3 team, 4 route, 5 attempt, 6 assigned_ms,
--       7 due_ms, 8 event bytes, 9 expected pool version ('' = no pool), 10 cursor after
--       ('' = none), 11 capacity, 12 daily cap ('' = none), 13 retention seconds,
--       14 lead id, 15 daily-count lifetime seconds, 16 decision trace bytes,
--       17 mode: 'new' (a lead event) or 'requeue' (a queued lead retried),
--       18 '1' to put a queued lead on the retry queue, 19 the lead event bytes,
--       20 assignments topic, 21 routing-decisions topic, 22.. rep, weight pairs
local mode = ARGV[17]
local rep = ARGV[2]
if mode == 'new' then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    -- A replay or a concurrent router: keep the first decision.
    return {'exists', redis.call('HGET', KEYS[1], 'event'), redis.call('HGET', KEYS[1], 'published') or '0'}
  end
else
  -- Only a lead still waiting in the retry queue may be assigned (another router may
  -- have taken it, or its record expired).
  if redis.call('HGET', KEYS[1], 'status') ~= 'queued' or not redis.call('ZSCORE', KEYS[7], ARGV[14]) then
    return {'gone'}
  end
  if ARGV[1] ~= 'assigned' then return {'still_queued'} end
end
if ARGV[1] == 'assigned' then
  -- Compare-and-set on the state the pure decision read.
  if ARGV[9] ~= '' and (redis.call('HGET', KEYS[2], 'version') or '0') ~= ARGV[9] then
    return {'conflict', 'version'}
  end
  if tonumber(redis.call('HGET', KEYS[3], rep) or '0') >= tonumber(ARGV[11]) then
    return {'conflict', 'capacity'}
  end
  if ARGV[12] ~= '' and tonumber(redis.call('HGET', KEYS[6], rep) or '0') >= tonumber(ARGV[12]) then
    return {'conflict', 'daily_cap'}
  end
  if ARGV[9] ~= '' then redis.call('HINCRBY', KEYS[2], 'version', 1) end
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[2], 'cursor', ARGV[10]) end
  for i = 22, #ARGV, 2 do redis.call('HSET', KEYS[2], 'w:' .. ARGV[i], ARGV[i + 1]) end
  redis.call('HINCRBY', KEYS[3], rep, 1)
  redis.call('HSET', KEYS[5], rep, ARGV[6])
  redis.call('HINCRBY', KEYS[6], rep, 1)
  redis.call('EXPIRE', KEYS[6], ARGV[15])
  redis.call('ZADD', KEYS[4], 'NX', ARGV[7], ARGV[14])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rep', rep, 'team', ARGV[3], 'route', ARGV[4],
  'attempt', ARGV[5], 'assigned_ms', ARGV[6], 'due_ms', ARGV[7], 'event', ARGV[8], 'published', '0',
  'trace', ARGV[16])
if mode == 'new' and ARGV[1] == 'queued' and ARGV[18] == '1' then
  redis.call('HSET', KEYS[1], 'lead', ARGV[19])
  redis.call('ZADD', KEYS[7], 'NX', ARGV[6], ARGV[14])
end
if mode == 'requeue' then
  -- No Kafka record to replay on this path: the outbox carries the events until a
  -- publisher has them acknowledged by the broker.
  redis.call('ZREM', KEYS[7], ARGV[14])
  redis.call('HDEL', KEYS[1], 'lead')
  redis.call('HSET', KEYS[1], 'published', '1')
  redis.call('RPUSH', KEYS[8], cjson.encode({ARGV[20], ARGV[14], ARGV[8]}), cjson.encode({ARGV[21], ARGV[14], ARGV[16]}))
end
redis.call('EXPIRE', KEYS[1], ARGV[13])
return {'ok'}
