-- Settles one delivery. ARGV: topic, group, kind ('p': read from the
-- stream and pending there; 'r': a retry leased from the retry set),
-- stream id, outcome ('ack', 'retry', 'dead'), now ms, delay ms, reason,
-- attempt, message. Returns 0 when the delivery was settled already (its
-- lease ended and another handler has it), else 1.
local topic, group, kind, id, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, delay, reason = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local attempt, message = tonumber(ARGV[9]), ARGV[10]
local held = group_key(topic, group, 'held')
local attempts = group_key(topic, group, 'attempts')

if kind == 'p' then
  if redis.call('XACK', topic_key(topic, 's'), group, id) == 0 then
    return 0
  end
elseif redis.call('ZREM', group_key(topic, group, 'inflight'), id) == 0 then
  return 0
end

if outcome == 'ack' then
  redis.call('HDEL', held, id)
  redis.call('HDEL', attempts, id)
elseif outcome == 'retry' then
  redis.call('HSET', held, id, message)
  redis.call('HSET', attempts, id, attempt)
  redis.call('ZADD', group_key(topic, group, 'retry'), now + delay, id)
  redis.call('HINCRBY', group_key(topic, group, 'stats'), 'retried', 1)
else
  redis.call('HSET', held, id, message)
  redis.call('HDEL', attempts, id)
  redis.call('HSET', group_key(topic, group, 'dead'), id,
    cjson.encode({attempts = attempt, reason = reason, at = now}))
end
return 1
