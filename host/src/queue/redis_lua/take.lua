-- Before a group reads new messages: leases that ended are due again,
-- delayed messages that are due join the stream, and up to ARGV[5] due
-- retries are leased. ARGV: topic, group, now ms, lease ms, max.
-- Returns a flat list of (stream id, attempt, message) for the retries.
local topic, group = ARGV[1], ARGV[2]
local now, lease, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local retry = group_key(topic, group, 'retry')
local inflight = group_key(topic, group, 'inflight')
local held = group_key(topic, group, 'held')
local attempts = group_key(topic, group, 'attempts')

for _, id in ipairs(redis.call('ZRANGEBYSCORE', inflight, '-inf', now)) do
  redis.call('ZREM', inflight, id)
  redis.call('ZADD', retry, now, id)
end

local delayed = topic_key(topic, 'delayed')
local stream = topic_key(topic, 's')
for _, message in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', delayed, message)
  if redis.call('EXISTS', stream) == 1 then
    redis.call('XADD', stream, '*', 'm', message)
  end
end

local out = {}
if max <= 0 then
  return out
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, max)) do
  redis.call('ZREM', retry, id)
  local message = redis.call('HGET', held, id)
  if message then
    redis.call('ZADD', inflight, now + lease, id)
    local attempt = redis.call('HINCRBY', attempts, id, 1)
    table.insert(out, id)
    table.insert(out, attempt)
    table.insert(out, message)
  end
end
return out
