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

redis.call('HSET', ticket_key(id), 'status', 'cancelled',
           'ended', tostring(now_ms()))
local players = redis.call('HGET', ticket_key(id), 'players') or ''
for p in string.gmatch(players, '[^,]+') do
    if redis.call('GET', player_key(p)) == id then
        redis.call('DEL', player_key(p))
    end
end

return { 'OK', id }
