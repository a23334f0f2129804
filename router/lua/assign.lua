-- Record a routing decision atomically: assignment record, round-robin advance,
-- open-lead count and SLA timer in one step, or nothing at all.
-- KEYS: 1 lead hash, 2 team cursor, 3 open counts, 4 due timers
-- ARGV: 1 status (assigned|queued), 2 rep, 3 team, 4 route, 5 attempt,
--       6 assigned_ms, 7 due_ms, 8 event bytes, 9 cursor_before, 10 cursor_after,
--       11 capacity, 12 retention seconds, 13 lead id
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- A replay or a concurrent router: keep the first decision.
  return {'exists', redis.call('HGET', KEYS[1], 'event'), redis.call('HGET', KEYS[1], 'published') or '0'}
end
if ARGV[1] == 'assigned' then
  -- Compare-and-set on the state the pure decision read.
  local cursor = redis.call('GET', KEYS[2]) or '0'
  if cursor ~= ARGV[9] then return {'conflict', 'cursor'} end
  local open = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
  if open >= tonumber(ARGV[11]) then return {'conflict', 'capacity'} end
  redis.call('SET', KEYS[2], ARGV[10])
  redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
  redis.call('ZADD', KEYS[4], 'NX', ARGV[7], ARGV[13])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rep', ARGV[2], 'team', ARGV[3], 'route', ARGV[4],
  'attempt', ARGV[5], 'assigned_ms', ARGV[6], 'due_ms', ARGV[7], 'event', ARGV[8], 'published', '0')
redis.call('EXPIRE', KEYS[1], ARGV[12])
return {'ok'}
