-- match.lua: make a match of the tickets the engine put together: claim
-- them and allocate their game server, in one step.
--
-- ARGV  prefix, queue, fence, match id, allocator prefix, region,
--       server mode, build ('' any), players, roster (JSON), match ttl ms,
--       then per ticket: ticket id, team
-- Reply {'OK', server id, host, port, existing}
--     | {'FENCED'}                      another matcher leads the queue
--     | {'GONE', ticket id, ...}        these are no longer queued
--     | {'NO_SERVER'} | {'MATCH_GONE'}  the allocator's answer
--
-- All or nothing, and atomic: the server is allocated only for tickets
-- that are queued at that very moment, and the tickets are matched only
-- together with their server.  A ticket cancelled a microsecond earlier
-- costs no server; a match that finds no server leaves its tickets
-- queued.  A retry with the same match id (the reply was lost) answers
-- the match already made.
--
-- The tickets learn their server here; the players get their connection
-- tickets from GET /matchmaking/status, signed when they ask.

local q, fence, match = ARGV[2], ARGV[3], ARGV[4]
local region, mode, build = ARGV[6], ARGV[7], ARGV[8]
local players, roster, ttl = tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11])

if not lease_ok(q, fence) then
    return { 'FENCED' }
end

local mk = match_key(match)
local made = redis.call('HMGET', mk, 'server_id', 'server_host',
                        'server_port')
if made[1] then
    return { 'OK', made[1], made[2], made[3], '1' }
end

local gone = {}
for i = 12, #ARGV, 2 do
    if status_of(ARGV[i]) ~= 'queued' then
        gone[#gone + 1] = ARGV[i]
    end
end
if #gone > 0 then
    table.insert(gone, 1, 'GONE')
    return gone
end

-- {'OK', id, addr, port, match, players, mode, state, existing}
local a = alloc_allocate(match, region, mode, build, players)
if a[1] ~= 'OK' then
    return { a[1] }
end

local now = tostring(now_ms())
local tickets = {}

for i = 12, #ARGV, 2 do
    local id = ARGV[i]
    tickets[#tickets + 1] = id
    redis.call('HSET', ticket_key(id), 'status', 'matched', 'match', match,
               'team', ARGV[i + 1], 'matched_at', now, 'server_id', a[2],
               'server_host', a[3], 'server_port', a[4])
    redis.call('ZREM', live_key(q), id)
    -- a match outlives the wait: the ticket and its players' claim on it
    -- stay until the match ends, which ends the ticket
    redis.call('PEXPIRE', ticket_key(id), ttl)
    for _, p in ipairs(split(redis.call('HGET', ticket_key(id), 'players'))) do
        if redis.call('GET', player_key(p)) == id then
            redis.call('PEXPIRE', player_key(p), ttl)
        end
    end
end

redis.call('HSET', mk, 'queue', q, 'server_id', a[2], 'server_host', a[3],
           'server_port', a[4], 'tickets', table.concat(tickets, ','),
           'roster', roster, 'created', now)
redis.call('PEXPIRE', mk, ttl)
redis.call('ZADD', active_key(q), now, match)

return { 'OK', a[2], a[3], a[4], '0' }
