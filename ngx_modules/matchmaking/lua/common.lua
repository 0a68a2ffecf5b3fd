-- common.lua: prelude put in front of every matchmaking script at build
-- time, so that every script spells the keys the same way.
--
-- ARGV[1] is always the key prefix ("mm:" by default).  Keys are built
-- inside the scripts because a script meets ticket and player ids in the
-- queue that its caller could not list in advance (single-instance Redis,
-- or one hash slot: a prefix like "{mm}:" keeps every key in one slot).
--
-- A ticket's states (ngx_modules/matchmaking/README.md has the diagram):
--
--   queued --match.lua--> matched --sweep.lua--> playing --finish.lua--> finished
--     |                      |                      |
--     +-> cancelled          +-> failed             +-> failed (server_lost)
--     +-> expired                (no_show, aborted, server_lost)

local P = ARGV[1]

local function ticket_key(id) return P .. 'ticket:' .. id end
local function player_key(id) return P .. 'player:' .. id end
local function queue_key(q) return P .. 'queue:' .. q end
local function live_key(q) return P .. 'live:' .. q end
local function lease_key(q) return P .. 'lease:' .. q end
local function fence_key(q) return P .. 'fence:' .. q end
local function match_key(id) return P .. 'match:' .. id end
local function active_key(q) return P .. 'active:' .. q end
local function party_key(id) return P .. 'party:' .. id end
local function party_of_key(id) return P .. 'party_of:' .. id end
local function limit_key(id) return P .. 'limit:join:' .. id end

-- A ticket holds its players while it is in one of these states; the
-- others (cancelled, expired, finished, failed) are over, and a player
-- whose latest ticket is over may queue again.
local HOLDS = { queued = true, matched = true, playing = true }

-- a ticket's status, or nil when it is gone (expired from Redis)
local function status_of(id)
    return redis.call('HGET', ticket_key(id), 'status')
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function split(list)
    local t = {}
    for id in string.gmatch(list or '', '[^,]+') do
        t[#t + 1] = id
    end
    return t
end

-- End a ticket: its status says how, "reason" ('' for none) says why.
local function end_ticket(id, status, reason)
    redis.call('HSET', ticket_key(id), 'status', status, 'reason', reason,
               'ended', tostring(now_ms()))
end

-- The lease of queue q is held by "holder" with fencing token "fence":
-- a matcher whose lease lapsed and that another took over must not write
-- anything, however late its writes arrive.
local function lease_ok(q, fence)
    return redis.call('HGET', lease_key(q), 'fence') == fence
end
