-- Makes every dead letter of a group due again, attempts starting over.
-- ARGV: topic, group, now ms. Returns how many.
local topic, group, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local dead = group_key(topic, group, 'dead')
local ids = redis.call('HKEYS', dead)
for _, id in ipairs(ids) do
  redis.call('HDEL', dead, id)
  redis.call('HSET', group_key(topic, group, 'attempts'), id, 0)
  redis.call('ZADD', group_key(topic, group, 'retry'), now, id)
end
return #ids
