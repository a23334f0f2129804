-- Apply a rep's touch to a lead, atomically. The first touch that counts wins.
-- KEYS: 1 lead hash, 2 open counts, 3 due timers, 4 inflight timers, 5 pending touches,
--       6 freed-capacity counter (tells routers that waiting leads may now fit),
--       7 untouched leads (zset)
-- ARGV: 1 rep ('' to settle: take the assigned rep's pending touch), 2 touched_ms,
--       3 lead id, 4 retention seconds, 5 channel, 6 direction
-- Returns {'met', rep, team, attempt, assigned_ms, due_ms, touched_ms, policy, clock_ms,
-- breached} while the sla.met is not yet published (so a replay after a crash
-- publishes it again), else {'pending'|'nothing'|'queued'|'other_rep'|'not_counted'|'duplicate'}.
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
local f = redis.call('HMGET', KEYS[1], 'rep', 'team', 'attempt', 'assigned_ms', 'due_ms', 'touched_ms',
  'met_published', 'policy', 'clock_ms', 'breached', 'touch_by', 'touch_channels', 'touch_directions', 'esc',
  'created_ms')
local assigned_rep = f[1]
if rep == '' then
  rep = assigned_rep
  touched = redis.call('HGET', KEYS[5], rep)
  if not touched then return {'nothing'} end
else
  -- The policy says which activities count: by whom, on which channels, which way.
  if f[11] ~= 'any_rep' and rep ~= assigned_rep then return {'other_rep'} end
  if f[12] and not string.find(f[12], ',' .. ARGV[5] .. ',', 1, true) then return {'not_counted'} end
  if f[13] and not string.find(f[13], ',' .. ARGV[6] .. ',', 1, true) then return {'not_counted'} end
end
local function met(at)
  return {'met', rep, f[2], f[3], f[4], f[5], at, f[8] or 'default', f[9] or f[4], f[10] or '0', f[15] or ''}
end
if f[6] then
  if f[7] == '1' then return {'duplicate'} end
  return met(f[6])
end
redis.call('HSET', KEYS[1], 'touched_ms', touched, 'touched_by', rep)
redis.call('HINCRBY', KEYS[2], assigned_rep, -1)
redis.call('ZREM', KEYS[7], ARGV[3])
redis.call('INCR', KEYS[6])
-- The clock stops: warnings and escalations of this attempt are moot. A touch
-- after the deadline leaves the breach timer, so the breach still fires.
local attempt = f[3]
local members = {'warn:' .. attempt .. ':' .. ARGV[3]}
for i = 0, tonumber(f[14] or '0') - 1 do table.insert(members, 'esc' .. i .. ':' .. attempt .. ':' .. ARGV[3]) end
if tonumber(touched) <= tonumber(f[5]) then table.insert(members, 'breach:' .. attempt .. ':' .. ARGV[3]) end
for _, member in ipairs(members) do
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZREM', KEYS[4], member)
end
return met(touched)
