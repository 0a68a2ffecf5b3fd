-- common.lua: prelude that the build puts in front of every allocator
-- script (see gen_scripts.sh).
--
-- A script run by EVAL/EVALSHA cannot call another one, so helpers cannot
-- be shared at run time; pasting this file in front of each script at
-- build time keeps one spelling of every key and one copy of every rule.
--
-- ARGV[1] is always the key prefix ("game:" by default).  Scripts meet
-- server ids in indexes that the caller could not know in advance, so
-- they must be able to spell those servers' keys themselves.

local P = ARGV[1]

local function server_key(id) return P .. 'server:' .. id end
local function hb_key(id) return P .. 'hb:' .. id end
local function match_key(m) return P .. 'match:' .. m end
local function host_key(h) return P .. 'host:' .. h end
local function load_key(h) return P .. 'hostload:' .. h end

-- How long a match record outlives its match: a retried allocate for a
-- match that is over must get MATCH_GONE, not a second server.
local MATCH_TOMBSTONE_MS = 3600000

-- States in which a server holds a match and so counts towards the load
-- of its host.
local BUSY = { Allocated = true, Playing = true, Finished = true }

local FIELDS = { 'state', 'token', 'addr', 'port', 'region', 'mode',
                 'build', 'host', 'capacity', 'match', 'players', 'ttl',
                 'drain' }

-- The server record as a table, or nil.  Missing fields read as '' so
-- that callers can concatenate them without nil checks.
local function load_server(id)
    local v = redis.call('HMGET', server_key(id), unpack(FIELDS))
    if not v[1] then
        return nil
    end
    local s = { id = id }
    for i, f in ipairs(FIELDS) do
        s[f] = v[i] or ''
    end
    return s
end

local function now_ms()
    local t = redis.call('TIME')
    return tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

-- A Ready server sits in the index of its region+mode, which serves
-- requests that take any build, and, when it has a build label, in the
-- index of its region+mode+build, which serves requests that pin one.
local function index_keys(region, mode, build)
    local any = P .. 'ready:' .. region .. ':' .. mode
    if build == '' then
        return any, nil
    end
    return any, any .. ':' .. build
end

local function index_remove(s)
    local any, pinned = index_keys(s.region, s.mode, s.build)
    redis.call('ZREM', any, s.id)
    if pinned then
        redis.call('ZREM', pinned, s.id)
    end
end

-- "Packed": the score of a Ready server is the number of busy servers on
-- its host, and allocation takes the highest score first.  Matches so
-- fill hosts that already run matches, and idle hosts stay idle for the
-- fleet manager to drain.
local function index_add(s)
    local any, pinned = index_keys(s.region, s.mode, s.build)
    local score = tonumber(redis.call('GET', load_key(s.host)) or 0)
    redis.call('ZADD', any, score, s.id)
    if pinned then
        redis.call('ZADD', pinned, score, s.id)
    end
end

-- Changes the load of a host and rescores its Ready servers.  This walks
-- the servers of one host (a handful), never the fleet.
local function host_load_add(host, delta)
    local load = redis.call('INCRBY', load_key(host), delta)
    if load <= 0 then
        redis.call('DEL', load_key(host))
        load = 0
    end
    for _, id in ipairs(redis.call('SMEMBERS', host_key(host))) do
        local v = redis.call('HMGET', server_key(id), 'state', 'region',
                             'mode', 'build')
        if v[1] == 'Ready' then
            local any, pinned = index_keys(v[2], v[3], v[4] or '')
            -- XX: only servers that are really in the index; a Ready
            -- server found dead was dropped and must stay out
            redis.call('ZADD', any, 'XX', load, id)
            if pinned then
                redis.call('ZADD', pinned, 'XX', load, id)
            end
        end
    end
end

-- Ends the hold of a busy server on its match.  The match record stays
-- a while as a tombstone, so that a late retry cannot get a new server.
local function release(s)
    if s.match ~= '' then
        local mk = match_key(s.match)
        if redis.call('HGET', mk, 'server') == s.id then
            redis.call('PEXPIRE', mk, MATCH_TOMBSTONE_MS)
        end
    end
    redis.call('HSET', server_key(s.id), 'match', '', 'players', '0')
    s.match, s.players = '', '0'
    host_load_add(s.host, -1)
end

-- Takes a server out of every structure but its own hash and heartbeat.
local function forget(s)
    index_remove(s)
    if BUSY[s.state] then
        release(s)
    end
    redis.call('SREM', host_key(s.host), s.id)
end

-- The reply shared by allocate and heartbeat: what a server is doing.
-- heartbeat.lua appends the drain flag; allocate's reply stays as it is.
local function assignment(s, existing)
    return { 'OK', s.id, s.addr, s.port, s.match, s.players, s.mode,
             s.state, existing }
end


-- Give match "match" a live Ready server of region+mode (any build when
-- build is ''), atomically: Redis runs a script alone, so between reading
-- the index and writing the server no other allocation can run, and a
-- server can never be handed to two matches.  allocate.lua is this
-- function alone; the matchmaker's match.lua calls it in the same script
-- that claims the match's tickets, so that nothing is allocated for a
-- ticket that is no longer queued.
local function allocate(match, region, mode, build, players)
    local mk = match_key(match)
    local any, pinned = index_keys(region, mode, build)
    local index = pinned or any

    -- Idempotent by match id: a caller that timed out and retries gets
    -- the server it already has instead of taking a second one.
    local owner = redis.call('HGET', mk, 'server')
    if owner then
        local s = load_server(owner)
        if s and s.match == match
           and (s.state == 'Allocated' or s.state == 'Playing')
           and redis.call('EXISTS', hb_key(owner)) == 1
        then
            return assignment(s, '1')
        end
        -- The match is over or its server died: the players must not be
        -- sent anywhere else under the same match id.
        return { 'MATCH_GONE', owner }
    end

    -- Servers too small for the match are skipped, not dropped.  Fleets
    -- that mix capacities within one region+mode should tell them apart
    -- by mode or build; the bound keeps a misconfigured fleet from
    -- costing a scan.
    local SKIP_MAX = 32
    local skipped = 0

    while true do
        local top = redis.call('ZREVRANGE', index, skipped, skipped)
        if #top == 0 then
            return { 'NO_SERVER' }
        end

        local id = top[1]
        local s = load_server(id)

        if not s or s.state ~= 'Ready'
           or redis.call('EXISTS', hb_key(id)) == 0
        then
            -- Dead (no heartbeat within its ttl) or not Ready any more:
            -- drop it from the indexes for good; only register puts it
            -- back.
            if s then
                index_remove(s)
            else
                redis.call('ZREM', index, id)
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
            redis.call('HSET', mk, 'server', id, 'region', region,
                       'mode', mode, 'players', tostring(players),
                       'since', now)
            s.state, s.match, s.players = 'Allocated', match,
                                          tostring(players)
            host_load_add(s.host, 1)
            return assignment(s, '0')
        end
    end
end
