-- The incumbent: a flash sale as one Redis Lua script, the usual design the
-- seckill engine is compared with (bench/compare.sh loads it with SCRIPT
-- LOAD and drives it with redis-benchmark's EVALSHA). Redis runs a script
-- alone, so the check and the writes are atomic; whether an "ok" survives a
-- crash depends on the server's persistence settings, not on the script.
--   KEYS[1] stock (an integer)   KEYS[2] buyers (a set of user ids)
--   KEYS[3] orders (a list of "user:qty")
--   ARGV[1] user id              ARGV[2] quantity
-- Returns "duplicate" (the user already bought), "sold_out" or "ok".
local user = ARGV[1]
local qty = tonumber(ARGV[2])
if redis.call('SISMEMBER', KEYS[2], user) == 1 then
  return 'duplicate'
end
if tonumber(redis.call('GET', KEYS[1]) or '0') < qty then
  return 'sold_out'
end
redis.call('DECRBY', KEYS[1], qty)
redis.call('SADD', KEYS[2], user)
redis.call('RPUSH', KEYS[3], user .. ':' .. qty)
return 'ok'
