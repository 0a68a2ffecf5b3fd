-- deregister.lua: a server leaves the fleet for good.
--
-- KEYS[1] server hash, KEYS[2] heartbeat key
-- ARGV    prefix, id, token
-- Reply   {'OK'} | {'NOT_FOUND'} | {'NOT_OWNER'}

local s = load_server(ARGV[2])
if not s then
    return { 'NOT_FOUND' }
end
if s.token ~= ARGV[3] then
    return { 'NOT_OWNER' }
end

forget(s)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', P .. 'servers', s.id)

return { 'OK' }
