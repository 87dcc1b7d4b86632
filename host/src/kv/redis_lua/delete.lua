-- KEYS[1] data hash, KEYS[2] key index; ARGV[1] key. Returns 1 if it existed.
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return existed
