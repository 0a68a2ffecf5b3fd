-- lease.lua: take or renew the right to match one queue.
--
-- ARGV  prefix, queue, holder id, lease ms
-- Reply {'OK', fence, 'new' | 'renewed'} | {'HELD', holder}
--
-- Exactly one matcher per queue across all workers and all nginx
-- instances: the lease is a Redis key with a TTL, so a crashed holder's
-- lease lapses by itself and another matcher takes over.  Each new lease
-- gets a fencing token from a counter that never goes back; every write a
-- matcher makes carries its token and is refused once the token is stale.

local q, holder, ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = lease_key(q)

local cur = redis.call('HMGET', key, 'holder', 'fence')
if cur[1] == holder then
    redis.call('PEXPIRE', key, ms)
    return { 'OK', cur[2], 'renewed' }
end
if cur[1] then
    return { 'HELD', cur[1] }
end

local fence = tostring(redis.call('INCR', fence_key(q)))
redis.call('HSET', key, 'holder', holder, 'fence', fence)
redis.call('PEXPIRE', key, ms)

return { 'OK', fence, 'new' }
