-- Claim due timers for alerting, atomically, so two monitors never alert twice.
-- Expired leases (a monitor died between claim and ack) go back to `due` first.
-- KEYS: 1 due timers, 2 inflight timers
-- ARGV: 1 cutoff_ms, 2 now_ms, 3 lease_until_ms, 4 limit, 5 lead key prefix
-- Returns a flat list: lead, rep, team, attempt, assigned_ms, due_ms (repeated).
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
for _, lead in ipairs(expired) do
  redis.call('ZREM', KEYS[2], lead)
  local due = redis.call('HGET', ARGV[5] .. lead, 'due_ms')
  if due then redis.call('ZADD', KEYS[1], 'NX', due, lead) end
end
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4])
for _, lead in ipairs(due) do
  redis.call('ZREM', KEYS[1], lead)
  local f = redis.call('HMGET', ARGV[5] .. lead, 'rep', 'team', 'attempt', 'assigned_ms', 'due_ms',
    'touched_ms', 'breached')
  -- Skip timers whose lead expired, was already alerted, or was touched in time.
  if f[5] and f[7] ~= '1' and not (f[6] and tonumber(f[6]) <= tonumber(f[5])) then
    redis.call('ZADD', KEYS[2], ARGV[3], lead)
    table.insert(out, lead)
    for i = 1, 5 do table.insert(out, f[i] or '') end
  end
end
return out
