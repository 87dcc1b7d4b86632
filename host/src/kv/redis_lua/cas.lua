-- KEYS[1] data hash, KEYS[2] key index
-- ARGV[1] key, ARGV[2] new value, ARGV[3] '0' = expect absent | '1' = expect ARGV[4]
-- Returns 1 if swapped, 0 if not.
local cur = redis.call('HGET', KEYS[1], ARGV[1])  -- false when absent
if ARGV[3] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[4] then                        -- byte-exact; false ~= any string
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
