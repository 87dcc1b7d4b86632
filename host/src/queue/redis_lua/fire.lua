-- Claims a schedule's tick for the whole cluster and publishes its
-- message in the same step. ARGV: topic, group, tick ms, then publish's
-- id, header, payload, now ms, dedup window ms. Returns 1 if this call
-- fired the tick, 0 if a host did before.
local topic, group, tick = ARGV[1], ARGV[2], tonumber(ARGV[3])
local tick_key = group_key(topic, group, 'tick')
local last = tonumber(redis.call('GET', tick_key) or '0') or 0
if last >= tick then
  return 0
end
redis.call('SET', tick_key, tick)
publish(topic, ARGV[4], ARGV[5], ARGV[6], 0, '', tonumber(ARGV[7]), tonumber(ARGV[8]))
return 1
