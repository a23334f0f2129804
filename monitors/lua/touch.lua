-- Apply a rep's touch to a lead, atomically. First touch by the assigned rep wins.
-- KEYS: 1 lead hash, 2 open counts, 3 due timers, 4 inflight timers, 5 pending touches,
--       6 freed-capacity counter (tells routers that waiting leads may now fit)
-- ARGV: 1 rep ('' to settle: take the assigned rep's pending touch), 2 touched_ms,
--       3 lead id, 4 retention seconds
-- Returns {'met', rep, team, attempt, assigned_ms, due_ms, touched_ms} while the
-- sla.met is not yet published (so a replay after a crash publishes it again),
-- else {'pending'|'nothing'|'queued'|'other_rep'|'duplicate'}.
local status = redis.call('HGET', KEYS[1], 'status')
local rep = ARGV[1]
local touched = ARGV[2]
if not status or (status == 'queued' and rep ~= '') then
  if rep == '' then return {'nothing'} end
  -- The activity beat its assignment (the lead is unknown yet, or waiting in a
  -- queue): remember the earliest touch per rep, to settle when it is assigned.
  local prev = redis.call('HGET', KEYS[5], rep)
  if (not prev) or tonumber(touched) < tonumber(prev) then redis.call('HSET', KEYS[5], rep, touched) end
  redis.call('EXPIRE', KEYS[5], ARGV[4])
  return {'pending'}
end
if status ~= 'assigned' then return {status} end
local assigned_rep = redis.call('HGET', KEYS[1], 'rep')
if rep == '' then
  rep = assigned_rep
  touched = redis.call('HGET', KEYS[5], rep)
  if not touched then return {'nothing'} end
end
if rep ~= assigned_rep then return {'other_rep'} end
local fields = redis.call('HMGET', KEYS[1], 'team', 'attempt', 'assigned_ms', 'due_ms', 'touched_ms', 'met_published')
if fields[5] then
  if fields[6] == '1' then return {'duplicate'} end
  return {'met', rep, fields[1], fields[2], fields[3], fields[4], fields[5]}
end
redis.call('HSET', KEYS[1], 'touched_ms', touched)
redis.call('HINCRBY', KEYS[2], rep, -1)
redis.call('INCR', KEYS[6])
if tonumber(touched) <= tonumber(fields[4]) then
  -- In time: the clock stops. A late touch leaves the timer so the breach fires.
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('ZREM', KEYS[4], ARGV[3])
end
return {'met', rep, fields[1], fields[2], fields[3], fields[4], touched}
