-- Applies one change to the cluster's deployment in one atomic step: the
-- records, their .wasm blobs, the version, and the removal of every blob
-- no record names any more. Cleaning up in the same step is what makes it
-- safe against a concurrent publish: no other write can land between the
-- check that a blob is unused and its deletion.
--
-- KEYS[1] the records (hash: name -> JSON), KEYS[2] the version counter,
-- KEYS[3] the cluster's identity, KEYS[4] the set of blob digests.
-- ARGV[1] mode: "write" (the identity must be ARGV[2]), "init" (start a
--   cluster as ARGV[2] only if Redis holds none), "adopt" (ARGV[2] and
--   these records become the cluster, whatever Redis held);
-- ARGV[2] the identity; ARGV[3] the lowest version "adopt" may set;
-- ARGV[4] the changes, JSON: [{"name", "set": {field: value},
--   "clear": [field], "remove": bool}];
-- ARGV[5..] pairs of blob digest and bytes.
-- Returns {outcome, identity, version}.

local records_key, version_key, id_key, blobs_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, id = ARGV[1], ARGV[2]
local current = redis.call('GET', id_key)
local version = tonumber(redis.call('GET', version_key) or '0') or 0

if mode == 'write' then
  if current ~= id then
    return redis.error_reply('HIVECLUSTER the cluster in Redis is ' .. tostring(current) ..
      ', not ' .. id .. ', which this host follows')
  end
elseif mode == 'init' then
  if current then
    return {'exists', current, tostring(version)}
  end
  if redis.call('HLEN', records_key) > 0 or version > 0 then
    -- A cluster from before identities: it keeps its records.
    redis.call('SET', id_key, id)
    return {'claimed', id, tostring(version)}
  end
  redis.call('SET', id_key, id)
elseif mode == 'adopt' then
  redis.call('SET', id_key, id)
  redis.call('DEL', records_key)
else
  return redis.error_reply('HIVECLUSTER unknown mode ' .. tostring(mode))
end

for i = 5, #ARGV, 2 do
  redis.call('SET', 'hive:cluster:wasm:' .. ARGV[i], ARGV[i + 1])
  redis.call('SADD', blobs_key, ARGV[i])
end

for _, change in ipairs(cjson.decode(ARGV[4])) do
  if change.remove then
    redis.call('HDEL', records_key, change.name)
  else
    local record = {}
    local raw = redis.call('HGET', records_key, change.name)
    if raw then
      local ok, decoded = pcall(cjson.decode, raw)
      if ok and type(decoded) == 'table' then
        record = decoded
      end
    end
    for field, value in pairs(change.set or {}) do
      record[field] = value
    end
    for _, field in ipairs(change.clear or {}) do
      record[field] = nil
    end
    redis.call('HSET', records_key, change.name, cjson.encode(record))
  end
end

if mode == 'write' then
  version = redis.call('INCR', version_key)
else
  version = math.max(version, tonumber(ARGV[3]) or 0) + 1
  redis.call('SET', version_key, version)
end

-- A blob stays while any record's text names its digest.
local texts = redis.call('HVALS', records_key)
for _, digest in ipairs(redis.call('SMEMBERS', blobs_key)) do
  local used = false
  for _, text in ipairs(texts) do
    if string.find(text, digest, 1, true) then
      used = true
      break
    end
  end
  if not used then
    redis.call('DEL', 'hive:cluster:wasm:' .. digest)
    redis.call('SREM', blobs_key, digest)
  end
end

return {'done', id, tostring(version)}
