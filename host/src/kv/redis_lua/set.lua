-- KEYS[1] data hash, KEYS[2] key index (zset); ARGV[1] key, ARGV[2] value
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
