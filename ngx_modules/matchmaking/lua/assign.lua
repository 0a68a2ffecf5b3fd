-- assign.lua: tell the players of a claimed match where to connect.
--
-- ARGV  prefix, queue, fence, server id, host, port, ticket id, ...
-- Reply {'OK'} | {'FENCED'}

local q, fence = ARGV[2], ARGV[3]

if not lease_ok(q, fence) then
    return { 'FENCED' }
end

for i = 7, #ARGV do
    redis.call('HSET', ticket_key(ARGV[i]), 'server_id', ARGV[4],
               'server_host', ARGV[5], 'server_port', ARGV[6])
end

return { 'OK' }
