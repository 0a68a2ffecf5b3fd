-- set_state.lua: the owner of a server moves it along its life cycle.
--
-- KEYS[1] server hash, KEYS[2] heartbeat key
-- ARGV    prefix, id, token, new state
-- Reply   {'OK', state} | {'ILLEGAL', current state} | {'NOT_FOUND'}
--         | {'NOT_OWNER'} | {'EXPIRED'}
--
-- Allocated is not reachable from here: only allocate.lua hands out
-- matches, so that the Ready index and the match records stay in step.

local LEGAL = {
    Starting  = { Ready = true, Shutdown = true },
    Ready     = { Shutdown = true },
    Allocated = { Playing = true, Finished = true, Shutdown = true },
    Playing   = { Finished = true, Shutdown = true },
    Finished  = { Ready = true, Shutdown = true },
    Shutdown  = {},
}

local s = load_server(ARGV[2])
if not s then
    return { 'NOT_FOUND' }
end
if s.token ~= ARGV[3] then
    return { 'NOT_OWNER' }
end

local to = ARGV[4]

-- A dead server may still say goodbye, but nothing else: it must not put
-- itself back into a Ready index, and it learns that it has to register.
if to ~= 'Shutdown' and redis.call('EXISTS', KEYS[2]) == 0 then
    return { 'EXPIRED' }
end

-- A repeat of the last transition (a retry after a lost reply) is not an
-- error.
if s.state == to then
    return { 'OK', to }
end
if not LEGAL[s.state] or not LEGAL[s.state][to] then
    return { 'ILLEGAL', s.state }
end

local from = s.state
redis.call('HSET', KEYS[1], 'state', to, 'since', now_ms())
s.state = to

if to == 'Ready' then
    if BUSY[from] then
        release(s)
    end
    index_add(s)

elseif to == 'Shutdown' then
    index_remove(s)
    if BUSY[from] then
        release(s)
    end
end

return { 'OK', to }
