-- drain.lua: take a server out of service without cutting a match short.
--
-- KEYS[1] server hash, KEYS[2] heartbeat key
-- ARGV    prefix, id
-- Reply   {'OK', 'Shutdown'} | {'BUSY', state} | {'NOT_FOUND'}
--
-- No token: whoever can run scripts on this Redis is an operator (the
-- fleet manager, game-allocate drain/cordon).
--
-- One script, so a drain and an allocation racing for the same server
-- have exactly one outcome.  Either the server was still Ready or
-- Starting: it becomes Shutdown and leaves its indexes here, and no
-- allocation can pick it afterwards.  Or an allocation came first: the
-- server keeps its match (BUSY) and is only marked; when it asks for
-- Ready after the match, set_state.lua shuts it down instead.  The server
-- reads the mark in its heartbeat reply and exits once it is idle.

local s = load_server(ARGV[2])
if not s then
    return { 'NOT_FOUND' }
end

if BUSY[s.state] then
    redis.call('HSET', KEYS[1], 'drain', '1')
    return { 'BUSY', s.state }
end

if s.state ~= 'Shutdown' then
    index_remove(s)
    redis.call('HSET', KEYS[1], 'state', 'Shutdown', 'since', now_ms())
end
redis.call('HSET', KEYS[1], 'drain', '1')

return { 'OK', 'Shutdown' }
