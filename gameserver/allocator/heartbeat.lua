-- heartbeat.lua: a game server says it is alive and learns what it
-- should be doing (this is how it hears that it was allocated).
--
-- KEYS[1] server hash, KEYS[2] heartbeat key
-- ARGV    prefix, id, token
-- Reply   {'OK', id, addr, port, match, players, mode, state, '0'}
--         | {'NOT_FOUND'} | {'NOT_OWNER'} | {'EXPIRED'}

local s = load_server(ARGV[2])
if not s then
    return { 'NOT_FOUND' }
end
if s.token ~= ARGV[3] then
    return { 'NOT_OWNER' }
end

-- XX: once the key has lapsed the server was declared dead and may have
-- been dropped from the indexes.  Only a new register brings it back, so
-- a server that stalled longer than its ttl cannot slip back in unseen.
if not redis.call('SET', KEYS[2], ARGV[3], 'XX', 'PX', tonumber(s.ttl)) then
    return { 'EXPIRED' }
end

return assignment(s, '0')
