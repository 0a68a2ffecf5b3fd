-- set_state.lua: the owner of a server moves it along its life cycle.
--
-- KEYS[1] server hash, KEYS[2] heartbeat key
-- ARGV    prefix, id, token, new state, match, [seated]
--         match: the match the caller believes the server holds; '' does
--         not check (for operators).  seated (Playing only, optional):
--         comma-separated ids of the players seated when the match began
-- Reply   {'OK', state} | {'STALE', current match} | {'ILLEGAL', current
--         state} | {'NOT_FOUND'} | {'NOT_OWNER'} | {'EXPIRED'}
--         A drained server that asks for Ready is shut down instead:
--         {'OK', 'Shutdown'}.
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

local to, match, seated = ARGV[4], ARGV[5] or '', ARGV[6]

-- Fenced by match id: the transitions that end or start a match, and
-- the release of one, apply only to the match the caller meant.  A
-- Finished queued for an old match must not release the fresh
-- allocation that arrived meanwhile.
if match ~= '' and s.match ~= match
   and (to == 'Playing' or to == 'Finished'
        or (to == 'Ready' and BUSY[s.state]))
then
    return { 'STALE', s.match }
end

-- A drained server is never offered again: its way back to Ready leads
-- to Shutdown (drain.lua).
if to == 'Ready' and s.drain == '1' then
    to = 'Shutdown'
end

-- A dead server may still say goodbye, and a busy one may carry on with
-- the match it holds (heartbeat.lua lets it resume), but nothing else: it
-- must not put itself back into a Ready index, and it learns that it has
-- to register.
if to ~= 'Shutdown' and redis.call('EXISTS', KEYS[2]) == 0
   and not (BUSY[s.state] and (to == 'Playing' or to == 'Finished'))
then
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

local from, now = s.state, now_ms()
redis.call('HSET', KEYS[1], 'state', to, 'since', now)
s.state = to

if to == 'Playing' then
    -- Who was seated, for the matchmaker: it lets the others queue again.
    -- Written only into the record of the match this server holds, so
    -- that a late call cannot recreate an expired record.
    local mk = match_key(s.match)
    if s.match ~= '' and redis.call('HGET', mk, 'server') == s.id then
        redis.call('HSET', mk, 'started', now)
        if seated then
            redis.call('HSET', mk, 'seated', seated)
        end
    end

elseif to == 'Ready' then
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
