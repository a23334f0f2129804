-- Record a routing decision atomically: the assignment record, the pool's rotation
-- state, the rep's open and daily counts and the SLA timers in one step, or nothing.
-- KEYS: 1 lead hash, 2 pool hash, 3 open counts, 4 due timers, 5 last-assigned,
--       6 daily counts, 7 retry queue (zset), 8 outbox (list), 9 reassign requests (zset),
--       10 untouched leads (zset: lead -> first assigned_ms)
-- ARGV: 1 the decision as JSON (numbers as strings, see router/assignments.py),
--       2 event bytes, 3 decision trace bytes, 4 the lead event bytes
-- Modes: 'new' (a lead event), 'requeue' (a waiting lead retried), 'reassign'
-- (an escalation routes an assigned lead again, as attempt + 1), 'reroute' (an
-- update changed an untouched lead's routing fields: routed again, attempt + 1).
local d = cjson.decode(ARGV[1])
local lead, rep, mode = d.lead, d.rep, d.mode
local previous = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'rep', 'event', 'published', 'assignees')
if mode == 'new' then
  if previous[1] then
    -- A replay or a concurrent router: keep the first decision.
    return {'exists', previous[4], previous[5] or '0'}
  end
elseif previous[5] ~= '1' then
  -- The lead's current decision was never announced: its router died (or is still
  -- retrying) between committing it and publishing it. Replacing its event now would
  -- lose it for good, as the replay would find the new one, marked published. Not
  -- yet: the replay publishes it, then the queue drainer or the update tries again.
  return {'gone'}
elseif mode == 'requeue' then
  -- Only a lead still waiting may be assigned (another router may have taken it).
  if previous[1] ~= 'queued' or not redis.call('ZSCORE', KEYS[7], lead) then return {'gone'} end
  if d.status ~= 'assigned' then return {'still_queued'} end
elseif mode == 'reroute' then
  -- An update moved an untouched lead: only from the attempt the update saw.
  if previous[1] ~= 'assigned' or previous[2] ~= d.previous_attempt or redis.call('HEXISTS', KEYS[1], 'touched_ms') == 1 then
    return {'gone'}
  end
else
  -- Only a lead still asked for, at the attempt the request was made for, and still
  -- untouched: a touch that landed after the drainer read the lead wins.
  if previous[1] ~= 'assigned' or previous[2] ~= d.previous_attempt or not redis.call('ZSCORE', KEYS[9], lead)
    or redis.call('HEXISTS', KEYS[1], 'touched_ms') == 1 then
    return {'gone'}
  end
end
if d.status == 'assigned' then
  -- Compare-and-set on the state the pure decision read.
  if d.version ~= '' and (redis.call('HGET', KEYS[2], 'version') or '0') ~= d.version then
    return {'conflict', 'version'}
  end
  if tonumber(redis.call('HGET', KEYS[3], rep) or '0') >= tonumber(d.capacity) then
    return {'conflict', 'capacity'}
  end
  if d.daily_cap ~= '' and tonumber(redis.call('HGET', KEYS[6], rep) or '0') >= tonumber(d.daily_cap) then
    return {'conflict', 'daily_cap'}
  end
  if d.version ~= '' then redis.call('HINCRBY', KEYS[2], 'version', 1) end
  -- One command per key, not one per field: a command from a script costs more than
  -- the field it writes (hundreds of decisions go through here per batch).
  local pool = {}
  if d.cursor ~= '' then pool[1], pool[2] = 'cursor', d.cursor end
  for weight_rep, weight in pairs(d.weights) do pool[#pool + 1] = 'w:' .. weight_rep; pool[#pool + 1] = weight end
  if #pool > 0 then redis.call('HSET', KEYS[2], unpack(pool)) end
  redis.call('HINCRBY', KEYS[3], rep, 1)
  redis.call('HSET', KEYS[5], rep, d.assigned_ms)
  redis.call('HINCRBY', KEYS[6], rep, 1)
  redis.call('EXPIRE', KEYS[6], d.daily_ttl)
  local timers = {}
  for _, timer in ipairs(d.timers) do timers[#timers + 1] = timer[2]; timers[#timers + 1] = timer[1] end
  if #timers > 0 then redis.call('ZADD', KEYS[4], 'NX', unpack(timers)) end
  -- NX: a reassigned lead keeps the age of its first assignment.
  redis.call('ZADD', KEYS[10], 'NX', d.assigned_ms, lead)
elseif mode ~= 'new' and mode ~= 'requeue' then
  redis.call('ZREM', KEYS[10], lead)  -- queued once its attempts ran out: nobody holds it
end
if mode == 'reassign' or mode == 'reroute' then
  -- The previous rep no longer holds the lead; its old attempt's state is cleared
  -- (its timers carry the old attempt and are ignored when they fall due).
  redis.call('HINCRBY', KEYS[3], previous[3], -1)
  redis.call('HDEL', KEYS[1], 'touched_ms', 'touched_by', 'met_published', 'breached', 'warn_ms',
    'alerted:warn', 'alerted:breach', 'esc')
  for i = 0, 19 do redis.call('HDEL', KEYS[1], 'alerted:esc' .. i) end
  redis.call('ZREM', KEYS[9], lead)
end
-- Later pairs win over earlier ones, as successive HSETs would.
local record = {'status', d.status, 'rep', rep, 'team', d.team, 'route', d.route,
  'attempt', d.attempt, 'assigned_ms', d.assigned_ms, 'due_ms', d.due_ms, 'event', ARGV[2],
  'published', '0', 'trace', ARGV[3]}
for field, value in pairs(d.fields) do record[#record + 1] = field; record[#record + 1] = value end
if d.status == 'assigned' then
  record[#record + 1] = 'assignees'
  record[#record + 1] = previous[6] and (previous[6] .. ',' .. rep) or rep
end
redis.call('HSET', KEYS[1], unpack(record))
-- The lead itself is kept only while it may be routed again: waiting in the retry
-- queue, or under a policy that reassigns.
local waits = mode == 'new' and d.status == 'queued' and d.retry == '1'
if (waits or d.keep_lead == '1') and ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'lead', ARGV[4])
elseif not waits then
  redis.call('HDEL', KEYS[1], 'lead')
end
if waits then redis.call('ZADD', KEYS[7], 'NX', d.assigned_ms, lead) end
if mode ~= 'new' then
  -- No Kafka record to replay on these paths: the outbox carries the events until a
  -- publisher has them acknowledged by the broker.
  if mode == 'requeue' then redis.call('ZREM', KEYS[7], lead) end
  redis.call('HSET', KEYS[1], 'published', '1')
  for _, record in ipairs(d.outbox) do redis.call('RPUSH', KEYS[8], cjson.encode(record)) end
  redis.call('RPUSH', KEYS[8], cjson.encode({d.topics[1], lead, ARGV[2]}), cjson.encode({d.topics[2], lead, ARGV[3]}))
end
redis.call('EXPIRE', KEYS[1], d.retention)
return {'ok'}
