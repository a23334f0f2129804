-- A team's webhook outbox. Every key shares the team's hash tag, so one call is
-- atomic on Redis Cluster too. A crash between any two calls loses nothing:
-- an item leaves `items` only when `done` says it was delivered.
--
-- KEYS[1] due    zset  item id -> when to (re)try it (epoch ms); a claim moves
--                      it a lease ahead, so a killed deliverer's items come back
-- KEYS[2] items  hash  item id -> the alert's JSON; a digest's value lists its
--                      breaches' ids, one per line
-- KEYS[3] held   zset  breach ids held back for this window's digest -> ms
-- KEYS[4] win    hash  start (ms) and sent (breaches) of the burst window
-- KEYS[5] tries  hash  item id -> failed deliveries so far
-- KEYS[6] seen   str   (enqueue only) the alert id was enqueued: copies are not
--
-- ARGV[1] is the operation: enqueue, claim, done or retry.

local due, items, held, win, tries = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op = ARGV[1]
local DIGEST = 'digest:'

-- When the burst window is over, its held breaches become one digest item.
local function close_window(now, window)
  local start = tonumber(redis.call('HGET', win, 'start') or '0')
  if start == 0 or now < start + window then
    return
  end
  local ids = redis.call('ZRANGE', held, 0, -1)
  if #ids > 0 then
    local id = DIGEST .. start
    redis.call('HSET', items, id, table.concat(ids, '\n'))
    redis.call('ZADD', due, now, id)
    redis.call('DEL', held)
  end
  redis.call('DEL', win)
end

local function members(digest)
  local out = {}
  for id in string.gmatch(redis.call('HGET', items, digest) or '', '[^\n]+') do
    out[#out + 1] = id
  end
  return out
end

if op == 'enqueue' then
  -- ARGV: id, payload, now, is_breach (1/0), burst threshold, window ms, seen ttl s
  local id, payload, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
  local breach, threshold, window = ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7])
  if not redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[8]) then
    return 0
  end
  close_window(now, window)
  redis.call('HSET', items, id, payload)
  if breach then
    if not redis.call('HGET', win, 'start') then
      redis.call('HSET', win, 'start', now)
    end
    if redis.call('HINCRBY', win, 'sent', 1) > threshold then
      redis.call('ZADD', held, now, id)
      return 2
    end
  end
  redis.call('ZADD', due, now, id)
  return 1
end

if op == 'claim' then
  -- ARGV: now, lease ms, limit, window ms, sample (payloads returned per digest)
  -- Returns, per item: id, failed tries, payload count, payloads...; a digest
  -- also returns its breach ids first, as one newline-separated string.
  local now, lease, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local window, sample = tonumber(ARGV[5]), tonumber(ARGV[6])
  close_window(now, window)
  local out = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)) do
    redis.call('ZADD', due, now + lease, id)
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', tries, id) or '0'
    if string.sub(id, 1, #DIGEST) == DIGEST then
      local ids = members(id)
      local payloads = {}
      for i = 1, math.min(#ids, sample) do
        payloads[#payloads + 1] = redis.call('HGET', items, ids[i]) or '{}'
      end
      out[#out + 1] = #payloads + 1
      out[#out + 1] = table.concat(ids, '\n')
      for _, p in ipairs(payloads) do
        out[#out + 1] = p
      end
    else
      out[#out + 1] = 1
      out[#out + 1] = redis.call('HGET', items, id) or '{}'
    end
  end
  return out
end

if op == 'done' then
  -- ARGV: ids delivered
  for i = 2, #ARGV do
    local id = ARGV[i]
    if string.sub(id, 1, #DIGEST) == DIGEST then
      for _, m in ipairs(members(id)) do
        redis.call('HDEL', items, m)
      end
    end
    redis.call('ZREM', due, id)
    redis.call('HDEL', items, id)
    redis.call('HDEL', tries, id)
  end
  return #ARGV - 1
end

if op == 'retry' then
  -- ARGV: now, base delay ms, max delay ms, jitter (0..1), ids. The first id
  -- failed; the rest wait with it so the team's alerts keep their order.
  local now, base, cap, jitter = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local failed = redis.call('HINCRBY', tries, ARGV[6], 1)
  local delay = math.min(cap, base * 2 ^ math.min(failed - 1, 30))
  delay = math.floor(delay * (0.75 + jitter / 2))
  for i = 6, #ARGV do
    -- A millisecond apart, so they come back in the order they were claimed.
    redis.call('ZADD', due, 'XX', now + delay + i - 6, ARGV[i])
  end
  return {failed, delay}
end

if op == 'depth' then
  return redis.call('ZCARD', due) + redis.call('ZCARD', held)
end

return redis.error_reply('unknown operation ' .. tostring(op))
