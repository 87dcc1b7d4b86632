-- KEYS[1] data hash, KEYS[2] key index; ARGV[1] key, ARGV[2] delta (decimal i64 text)
-- Returns the new value as a bulk string (Lua numbers are doubles: never return
-- it as a number). Errors: HIVE_NAN (stored value not a decimal i64),
-- HIVE_OVERFLOW (result outside i64). Nothing is changed on error.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local canon = nil
if cur then
  -- same as Rust: trim ASCII whitespace, optional sign, digits, i64 range
  local sign, digits = string.match(cur, '^[\t\n\v\f\r ]*([+-]?)(%d+)[\t\n\v\f\r ]*$')
  if not digits then
    return redis.error_reply('HIVE_NAN stored value is not a decimal integer')
  end
  digits = string.gsub(digits, '^0+', '')
  if digits == '' then digits = '0' end
  if #digits > 19 then
    return redis.error_reply('HIVE_NAN stored value is out of i64 range')
  end
  if #digits == 19 then
    local limit = (sign == '-') and '9223372036854775808' or '9223372036854775807'
    for i = 1, 19 do
      local a, b = string.byte(digits, i), string.byte(limit, i)
      if a ~= b then
        if a > b then
          return redis.error_reply('HIVE_NAN stored value is out of i64 range')
        end
        break
      end
    end
  end
  if sign == '-' and digits ~= '0' then canon = '-' .. digits else canon = digits end
  if canon ~= cur then redis.call('HSET', KEYS[1], ARGV[1], canon) end
end
local r = redis.pcall('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if type(r) == 'table' and r.err then
  -- undo: restore the original text (or absence); scripts are atomic, so no
  -- client ever saw the intermediate state
  if cur then
    if canon ~= cur then redis.call('HSET', KEYS[1], ARGV[1], cur) end
  else
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
  return redis.error_reply('HIVE_OVERFLOW ' .. r.err)
end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return redis.call('HGET', KEYS[1], ARGV[1])
