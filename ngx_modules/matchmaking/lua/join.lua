-- join.lua: put a ticket in a queue.  O(1) in the queue's length.
--
-- ARGV  prefix, ticket id, queue, rating, ticket ttl ms, max queue,
--       max wait ms, joins allowed per window, window ms,
--       player id, [player id ...]      (several for a party)
-- Reply {'OK', ticket id, live tickets}
--     | {'ACTIVE', ticket id}           a player already has a ticket in play
--     | {'LIMITED', ms to wait}         the player joined too often
--     | {'FULL', live tickets}          the queue is over its limit
--
-- One ticket in play per player: the player key points at the player's
-- latest ticket; a ticket that is over no longer blocks a new one, and the
-- key still lets the player read how the last one ended.
--
-- The queue's length is the number of live (queued) tickets, kept in a
-- sorted set by time of joining: the stream also holds entries of tickets
-- long matched, cancelled or expired, and counting those would let one
-- player looping join and cancel fill the queue for everyone.

local id, q, rating = ARGV[2], ARGV[3], ARGV[4]
local ttl, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_wait = tonumber(ARGV[7])
local joins, window = tonumber(ARGV[8]), tonumber(ARGV[9])
local leader = ARGV[10]

for i = 10, #ARGV do
    local other = redis.call('GET', player_key(ARGV[i]))
    if other and HOLDS[status_of(other) or ''] then
        return { 'ACTIVE', other }
    end
end

-- Tickets made, per player who asks, per window: a retried or refused
-- join costs nothing, a join-and-cancel loop is bounded.
local lk = limit_key(leader)
local made = tonumber(redis.call('GET', lk) or '0')
if made >= joins then
    local wait = redis.call('PTTL', lk)
    if wait < 0 then
        redis.call('PEXPIRE', lk, window)
        wait = window
    end
    return { 'LIMITED', tostring(wait) }
end

local now = now_ms()
local live = live_key(q)

-- Tickets that outlived max_wait without their expiry being written (no
-- matcher ran meanwhile) stop counting; a minute of slack keeps the ones
-- whose expiry is merely due.
redis.call('ZREMRANGEBYSCORE', live, '-inf', now - max_wait - 60000)

local len = redis.call('ZCARD', live)
if len >= limit then
    return { 'FULL', tostring(len) }
end

if redis.call('INCR', lk) == 1 then
    redis.call('PEXPIRE', lk, window)
end

local players = {}
for i = 10, #ARGV do
    players[#players + 1] = ARGV[i]
    redis.call('SET', player_key(ARGV[i]), id, 'PX', ttl)
end

redis.call('HSET', ticket_key(id), 'status', 'queued', 'queue', q,
           'rating', rating, 'size', tostring(#players),
           'players', table.concat(players, ','), 'created', tostring(now))
redis.call('PEXPIRE', ticket_key(id), ttl)
redis.call('ZADD', live, now, id)
redis.call('PEXPIRE', live, max_wait + 120000)
redis.call('XADD', queue_key(q), '*', 'ticket', id, 'rating', rating,
           'size', tostring(#players), 'at', tostring(now),
           'players', table.concat(players, ','))

return { 'OK', id, tostring(len + 1) }
