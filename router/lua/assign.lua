-- Record a routing decision atomically: the assignment record, the pool's rotation
-- state, the rep's open and daily counts and the SLA timer in one step, or nothing.
-- KEYS: 1 lead hash, 2 pool hash, 3 open counts, 4 due timers, 5 last-assigned, 6 daily counts
-- ARGV: 1 status (assigned|queued), 2 rep, 3 team, 4 route, 5 attempt, 6 assigned_ms,
--       7 due_ms, 8 event bytes, 9 expected pool version ('' = no pool), 10 cursor after
--       ('' = none), 11 capacity, 12 daily cap ('' = none), 13 retention seconds,
--       14 lead id, 15 daily-count lifetime seconds, 16 decision trace bytes,
--       17.. rep, weight pairs (weighted pools)
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- A replay or a concurrent router: keep the first decision.
  return {'exists', redis.call('HGET', KEYS[1], 'event'), redis.call('HGET', KEYS[1], 'published') or '0'}
end
local rep = ARGV[2]
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
  for i = 17, #ARGV, 2 do redis.call('HSET', KEYS[2], 'w:' .. ARGV[i], ARGV[i + 1]) end
  redis.call('HINCRBY', KEYS[3], rep, 1)
  redis.call('HSET', KEYS[5], rep, ARGV[6])
  redis.call('HINCRBY', KEYS[6], rep, 1)
  redis.call('EXPIRE', KEYS[6], ARGV[15])
  redis.call('ZADD', KEYS[4], 'NX', ARGV[7], ARGV[14])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rep', rep, 'team', ARGV[3], 'route', ARGV[4],
  'attempt', ARGV[5], 'assigned_ms', ARGV[6], 'due_ms', ARGV[7], 'event', ARGV[8], 'published', '0',
  'trace', ARGV[16])
redis.call('EXPIRE', KEYS[1], ARGV[13])
return {'ok'}
