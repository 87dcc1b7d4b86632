-- Shared by the scripts that publish (publish, commit, fire): key names
-- and one publish. Every key of a topic carries the topic as its hash tag.

local function topic_key(topic, suffix)
  return 'hive:ev:{' .. topic .. '}:' .. suffix
end

local function group_key(topic, group, suffix)
  return 'hive:ev:{' .. topic .. '}:g:' .. group .. ':' .. suffix
end

-- Publishes one message: stored in the topic's stream (which exists once a
-- group subscribed), or in its delayed set until it is due. A dedup key
-- seen within the window returns the first message's id and stores
-- nothing. Returns the message's id.
local function publish(topic, id, header, payload, delay_ms, dedup, now, window_ms)
  if dedup ~= '' then
    local seen_key = topic_key(topic, 'dedup:' .. dedup)
    local seen = redis.call('GET', seen_key)
    if seen then
      return seen
    end
    redis.call('SET', seen_key, id, 'PX', window_ms)
  end
  local message = header .. '\n' .. payload
  if delay_ms > 0 then
    redis.call('ZADD', topic_key(topic, 'delayed'), now + delay_ms, message)
  elseif redis.call('EXISTS', topic_key(topic, 's')) == 1 then
    redis.call('XADD', topic_key(topic, 's'), '*', 'm', message)
  end
  return id
end
