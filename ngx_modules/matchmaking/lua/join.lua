-- join.lua: put a ticket in a queue.  O(1) in the queue's length.
--
-- ARGV  prefix, ticket id, queue, rating, ticket ttl ms, max queue length,
--       player id, [player id ...]      (several for a party)
-- Reply {'OK', ticket id, queue length}
--     | {'ACTIVE', ticket id}           a player already has a live ticket
--     | {'FULL', queue length}          the queue is over its limit
--
-- One active ticket per player: the player key points at the player's
-- latest ticket and lives as long as the ticket can; a ticket that ended
-- (cancelled, expired, failed) no longer blocks a new one, and the key
-- still lets the player read how the last one ended.

local id, q, rating = ARGV[2], ARGV[3], ARGV[4]
local ttl, limit = tonumber(ARGV[5]), tonumber(ARGV[6])

for i = 7, #ARGV do
    local other = redis.call('GET', player_key(ARGV[i]))
    if other then
        local s = status_of(other)
        if s == 'queued' or s == 'matched' then
            return { 'ACTIVE', other }
        end
    end
end

local len = redis.call('XLEN', queue_key(q))
if len >= limit then
    return { 'FULL', tostring(len) }
end

local now = now_ms()
local players = {}
for i = 7, #ARGV do
    players[#players + 1] = ARGV[i]
    redis.call('SET', player_key(ARGV[i]), id, 'PX', ttl)
end

redis.call('HSET', ticket_key(id), 'status', 'queued', 'queue', q,
           'rating', rating, 'size', tostring(#players),
           'players', table.concat(players, ','), 'created', tostring(now))
redis.call('PEXPIRE', ticket_key(id), ttl)
redis.call('XADD', queue_key(q), '*', 'ticket', id, 'rating', rating,
           'size', tostring(#players), 'at', tostring(now),
           'players', table.concat(players, ','))

return { 'OK', id, tostring(len + 1) }
