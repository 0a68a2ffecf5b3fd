-- allocate.lua: give a match a live Ready server, atomically.
--
-- KEYS[1] match record, KEYS[2] Ready index of region+mode (+build)
-- ARGV    prefix, match id, region, mode, build ('' = any), players
-- Reply   {'OK', id, addr, port, match, players, mode, state, existing}
--         | {'NO_SERVER'} | {'MATCH_GONE', server id}
--
-- Redis runs a script alone, so between reading the index and writing
-- the server no other allocation can run: a server can never be handed
-- to two matches, whatever the number of concurrent callers.

local match, players = ARGV[2], tonumber(ARGV[6]) or 0

-- Idempotent by match id: a caller that timed out and retries gets the
-- server it already has instead of taking a second one.
local owner = redis.call('HGET', KEYS[1], 'server')
if owner then
    local s = load_server(owner)
    if s and s.match == match
       and (s.state == 'Allocated' or s.state == 'Playing')
       and redis.call('EXISTS', hb_key(owner)) == 1
    then
        return assignment(s, '1')
    end
    -- The match is over or its server died: the players must not be sent
    -- anywhere else under the same match id.
    return { 'MATCH_GONE', owner }
end

-- Servers too small for the match are skipped, not dropped.  Fleets that
-- mix capacities within one region+mode should tell them apart by mode
-- or build; the bound keeps a misconfigured fleet from costing a scan.
local SKIP_MAX = 32
local skipped = 0

while true do
    local top = redis.call('ZREVRANGE', KEYS[2], skipped, skipped)
    if #top == 0 then
        return { 'NO_SERVER' }
    end

    local id = top[1]
    local s = load_server(id)

    if not s or s.state ~= 'Ready'
       or redis.call('EXISTS', hb_key(id)) == 0
    then
        -- Dead (no heartbeat within its ttl) or not Ready any more: drop
        -- it from the indexes for good; only register puts it back.
        if s then
            index_remove(s)
        else
            redis.call('ZREM', KEYS[2], id)
        end

    elseif (tonumber(s.capacity) or 0) > 0
           and players > tonumber(s.capacity)
    then
        skipped = skipped + 1
        if skipped >= SKIP_MAX then
            return { 'NO_SERVER' }
        end

    else
        local now = now_ms()
        index_remove(s)
        redis.call('HSET', server_key(id), 'state', 'Allocated',
                   'match', match, 'players', tostring(players),
                   'since', now)
        redis.call('HINCRBY', server_key(id), 'matches', 1)
        redis.call('HSET', KEYS[1], 'server', id, 'region', ARGV[3],
                   'mode', ARGV[4], 'players', tostring(players),
                   'since', now)
        s.state, s.match, s.players = 'Allocated', match, tostring(players)
        host_load_add(s.host, 1)
        return assignment(s, '0')
    end
end
