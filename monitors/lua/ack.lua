-- Acknowledge published alerts: mark each alerted (per kind and attempt) and release
-- its claim; a reassigning escalation also asks the routers to route the lead again.
-- KEYS: 1 inflight timers, 2 reassign requests (zset)
-- ARGV: 1 lead key prefix, 2 now_ms, then member, reassign ('1'|'0') pairs
local released = {}
for i = 3, #ARGV, 2 do
  local member = ARGV[i]
  local kind, attempt, lead = string.match(member, '^([^:]+):(%d+):(.*)$')
  local key = ARGV[1] .. lead
  if redis.call('HGET', key, 'attempt') == attempt then
    if kind == 'breach' then
      redis.call('HSET', key, 'alerted:breach', '1', 'breached', '1')
    else
      redis.call('HSET', key, 'alerted:' .. kind, '1')
    end
    if ARGV[i + 1] == '1' then redis.call('ZADD', KEYS[2], 'NX', ARGV[2], lead) end
  end
  released[#released + 1] = member
end
for i = 1, #released, 1000 do
  redis.call('ZREM', KEYS[1], unpack(released, i, math.min(i + 999, #released)))
end
return #released
