-- A service's kv writes and publishes as one atomic step.
-- KEYS[1] the namespace's values (hash), KEYS[2] its key index (zset), as
-- the kv store keeps them.
-- ARGV[1] now ms, ARGV[2] dedup window ms, then the ops:
--   'set', key, value | 'del', key |
--   'pub', topic, id, header, payload, delay ms, dedup key
-- Returns the publishes' ids in order.
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids = {}
local i = 3
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'set' then
    redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2])
    redis.call('ZADD', KEYS[2], 0, ARGV[i + 1])
    i = i + 3
  elseif op == 'del' then
    redis.call('HDEL', KEYS[1], ARGV[i + 1])
    redis.call('ZREM', KEYS[2], ARGV[i + 1])
    i = i + 2
  elseif op == 'pub' then
    table.insert(ids, publish(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
      tonumber(ARGV[i + 5]), ARGV[i + 6], now, window))
    i = i + 7
  else
    return redis.error_reply('HIVE_OP unknown op ' .. tostring(op))
  end
end
return ids
