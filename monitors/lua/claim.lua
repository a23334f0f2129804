-- Claim due timers for alerting, atomically, so two monitors never alert twice.
-- Expired leases (a monitor died between claim and ack) go back to `due` first.
-- A timer member is `kind:attempt:lead`; kind is warn, breach or esc<N>.
-- KEYS: 1 due timers, 2 inflight timers
-- ARGV: 1 cutoff_ms, 2 now_ms, 3 lease_until_ms, 4 limit, 5 lead key prefix
-- Returns a flat list per claimed timer: member, rep, team, assigned_ms, due_ms, policy.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, ARGV[4])
for i = 1, #expired, 2 do
  -- Back as due (its original score is gone): at the cutoff, so this very call
  -- claims it again; it was claimable once already, so no watermark holds it.
  redis.call('ZREM', KEYS[2], expired[i])
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], expired[i])
end
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4])
-- Whole batches per command: a burst of due timers costs one hash read each, not four calls.
local CHUNK = 1000
for i = 1, #due, CHUNK do
  redis.call('ZREM', KEYS[1], unpack(due, i, math.min(i + CHUNK - 1, #due)))
end
local inflight = {}
for _, member in ipairs(due) do
  local kind, attempt, lead = string.match(member, '^([^:]+):(%d+):(.*)$')
  if lead then
    local f = redis.call('HMGET', ARGV[5] .. lead, 'rep', 'team', 'assigned_ms', 'due_ms', 'policy',
      'attempt', 'status', 'touched_ms', 'alerted:' .. kind)
    local live = f[4] and f[6] == attempt and f[7] == 'assigned' and f[9] ~= '1'
    -- A breach stands unless the lead was touched by its deadline; a warning or an
    -- escalation is pointless once the lead was touched at all.
    local touched = f[8] and (kind ~= 'breach' or tonumber(f[8]) <= tonumber(f[4]))
    if live and not touched then
      inflight[#inflight + 1] = ARGV[3]
      inflight[#inflight + 1] = member
      table.insert(out, member)
      for i = 1, 5 do table.insert(out, f[i] or '') end
    end
  end
end
for i = 1, #inflight, 2 * CHUNK do
  redis.call('ZADD', KEYS[2], unpack(inflight, i, math.min(i + 2 * CHUNK - 1, #inflight)))
end
return out
