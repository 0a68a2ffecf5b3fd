-- register.lua: a game server announces itself, or comes back after it
-- was declared dead.
--
-- KEYS[1] server hash, KEYS[2] heartbeat key
-- ARGV    prefix, id, token, addr, port, region, mode, build, host,
--         capacity, state (Starting or Ready), heartbeat ttl in ms
-- Reply   {'OK', state} | {'NOT_OWNER'} | {'BAD_ARG'}

local id, token = ARGV[2], ARGV[3]
local state, ttl = ARGV[11], tonumber(ARGV[12])

if (state ~= 'Starting' and state ~= 'Ready') or not ttl or ttl <= 0 then
    return { 'BAD_ARG' }
end

local old = load_server(id)
if old then
    -- A live server keeps its id: a second process started with the same
    -- id by mistake must not take over a server that players are on.
    if old.token ~= token and redis.call('EXISTS', KEYS[2]) == 1 then
        return { 'NOT_OWNER' }
    end
    -- Whatever the old incarnation held (index entries, a match, load on
    -- its host) died with it.
    forget(old)
    redis.call('DEL', KEYS[1])
end

-- a fresh record: no match, no drain flag, and a first beat for reap
local now = now_ms()
redis.call('HSET', KEYS[1],
           'id', id, 'token', token, 'addr', ARGV[4], 'port', ARGV[5],
           'region', ARGV[6], 'mode', ARGV[7], 'build', ARGV[8],
           'host', ARGV[9], 'capacity', ARGV[10], 'state', state,
           'match', '', 'players', '0', 'ttl', tostring(ttl),
           'since', now, 'beat', now)
redis.call('SADD', P .. 'servers', id)
redis.call('SADD', host_key(ARGV[9]), id)
redis.call('SET', KEYS[2], token, 'PX', ttl)

if state == 'Ready' then
    index_add(load_server(id))
end

return { 'OK', state }
