-- cancel.lua: a player withdraws their ticket while it is queued.
--
-- ARGV  prefix, player id
-- Reply {'OK', ticket id} | {'MATCHED', ticket id} | {'NONE'}
--
-- The queue's stream entry stays: the matcher learns of the cancellation
-- when it claims (the status is no longer "queued") and drops it then.

local id = redis.call('GET', player_key(ARGV[2]))
if not id then
    return { 'NONE' }
end

local s = status_of(id)
if s == 'matched' then
    return { 'MATCHED', id }
end
if s ~= 'queued' then
    return { 'NONE' }
end

-- the player key stays: status still reports "cancelled", and join
-- accepts a new ticket since this one is no longer queued
redis.call('HSET', ticket_key(id), 'status', 'cancelled',
           'ended', tostring(now_ms()))

return { 'OK', id }
