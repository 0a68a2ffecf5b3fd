-- assign.lua: tell the players of a claimed match where to connect.
--
-- ARGV  prefix, queue, fence, server id, host, port,
--       then per player: ticket id, player id, connection ticket
-- Reply {'OK'} | {'FENCED'}
--
-- The connection ticket is the signed token the game server checks when
-- the player connects; each player of a party ticket gets their own.

local q, fence = ARGV[2], ARGV[3]

if not lease_ok(q, fence) then
    return { 'FENCED' }
end

for i = 7, #ARGV, 3 do
    redis.call('HSET', ticket_key(ARGV[i]), 'server_id', ARGV[4],
               'server_host', ARGV[5], 'server_port', ARGV[6],
               'connection_ticket:' .. ARGV[i + 1], ARGV[i + 2])
end

return { 'OK' }
