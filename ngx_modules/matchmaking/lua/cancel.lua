-- cancel.lua: a player withdraws their ticket while it is queued.
--
-- ARGV  prefix, player id
-- Reply {'OK', ticket id} | {'MATCHED', ticket id} | {'NONE'}
--
-- The matcher holds its queue in memory: a "gone" entry on the queue's
-- stream tells it to drop the ticket at its next read.  Even before it
-- reads that, it cannot match the ticket: match.lua takes only tickets
-- that are still queued, in the same script that allocates the server.

local id = redis.call('GET', player_key(ARGV[2]))
if not id then
    return { 'NONE' }
end

local t = redis.call('HMGET', ticket_key(id), 'status', 'queue')
if t[1] == 'matched' or t[1] == 'playing' then
    return { 'MATCHED', id }
end
if t[1] ~= 'queued' then
    return { 'NONE' }
end

-- the player key stays: status still reports "cancelled", and join
-- accepts a new ticket since this one is no longer queued
end_ticket(id, 'cancelled', 'player')
redis.call('ZREM', live_key(t[2]), id)
redis.call('XADD', queue_key(t[2]), '*', 'gone', id)

return { 'OK', id }
