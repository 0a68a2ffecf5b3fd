-- status.lua: the player's latest ticket, in one round trip.
--
-- ARGV  prefix, player id
-- Reply {'NONE'} | {'TICKET', ticket id, field, value, field, value, ...}

local id = redis.call('GET', player_key(ARGV[2]))
if not id then
    return { 'NONE' }
end

local fields = redis.call('HGETALL', ticket_key(id))
if #fields == 0 then
    return { 'NONE' }
end

table.insert(fields, 1, id)
table.insert(fields, 1, 'TICKET')
return fields
