-- heartbeat.lua: a game server says it is alive and learns what it
-- should be doing (this is how it hears that it was allocated, and that
-- an operator or the fleet manager drained it).
--
-- KEYS[1] server hash, KEYS[2] heartbeat key
-- ARGV    prefix, id, token
-- Reply   {'OK', id, addr, port, match, players, mode, state, '0', drain}
--         | {'NOT_FOUND'} | {'NOT_OWNER'} | {'EXPIRED'}
--         drain is '1' once drain.lua marked the server, else '0'

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
    -- Except a busy server whose record still holds its match (Redis was
    -- out of its reach for longer than the ttl): it is in no Ready index,
    -- so it cannot be allocated by coming back, and registering again
    -- would throw away the match its players are on.  reap leaves such a
    -- record alone for a grace (see reap.lua), which is what makes this
    -- resumption possible.
    if not BUSY[s.state] or s.match == '' then
        return { 'EXPIRED' }
    end
    redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(s.ttl))
end

-- The time of the beat, by Redis' clock: reap measures its grace with it.
redis.call('HSET', KEYS[1], 'beat', now_ms())

local reply = assignment(s, '0')
reply[#reply + 1] = s.drain == '1' and '1' or '0'
return reply
