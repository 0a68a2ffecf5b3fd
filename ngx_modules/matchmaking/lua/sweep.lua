-- sweep.lua: follow the matches of a queue while they are played, so
-- that every ticket has a way out even when no result ever comes.
--
-- ARGV  prefix, queue, fence, allocator prefix, lost after ms, from, count
-- Reply {'OK', next from, {lost match, ...}, {started match, ...},
--        {ticket whose status changed, ...}}
--     | {'FENCED'}
--
-- For each match in play (active:<queue>, oldest first, "count" of them
-- from rank "from"), the allocator's records say what its server does:
--
--   - a result was published (result:<match>): the results consumer ends
--     the tickets; nothing to do here;
--   - the server started the match (state Playing, "seated" written on
--     the allocator's match record): tickets with a seated player become
--     "playing", the others fail with reason "no_show", so that their
--     players may queue again at once;
--   - the server no longer holds the match (it crashed and came back
--     empty, was reaped, or Redis lost its record), or its heartbeat has
--     been gone for "lost after" ms: the tickets fail with reason
--     "server_lost".  A heartbeat gone for less than that is a blink
--     (a busy server resumes its heartbeat when Redis is back).

local q, fence, AP = ARGV[2], ARGV[3], ARGV[4]
local lost_after = tonumber(ARGV[5])
local from, count = tonumber(ARGV[6]), tonumber(ARGV[7])

if not lease_ok(q, fence) then
    return { 'FENCED' }
end

local now = now_ms()
local lost, started, changed = {}, {}, {}
local active = active_key(q)

local function end_match(m)
    redis.call('ZREM', active, m)
    redis.call('HSET', match_key(m), 'ended', tostring(now))
end

local ids = redis.call('ZRANGE', active, from, from + count - 1)

for _, m in ipairs(ids) do
    local rec = redis.call('HMGET', match_key(m), 'server_id', 'tickets',
                           'started')
    local sid = rec[1]

    if not sid then
        -- the match record expired (a match longer than the match ttl)
        redis.call('ZREM', active, m)

    elseif redis.call('EXISTS', AP .. 'result:' .. m) == 0 then
        local s = redis.call('HMGET', AP .. 'server:' .. sid, 'state',
                             'match', 'beat')
        local holds = s[2] == m and (s[1] == 'Allocated' or s[1] == 'Playing')
        local beat = tonumber(s[3]) or 0

        if not holds
           or (redis.call('EXISTS', AP .. 'hb:' .. sid) == 0
               and now - beat >= lost_after)
        then
            for _, t in ipairs(split(rec[2])) do
                local st = redis.call('HMGET', ticket_key(t), 'status',
                                      'match')
                if HOLDS[st[1] or ''] and st[2] == m then
                    end_ticket(t, 'failed', 'server_lost')
                    changed[#changed + 1] = t
                end
            end
            end_match(m)
            lost[#lost + 1] = m

        elseif s[1] == 'Playing' and not rec[3] then
            local am = redis.call('HMGET', AP .. 'match:' .. m, 'seated',
                                  'started')
            if am[1] then
                local seated = {}
                for _, p in ipairs(split(am[1])) do
                    seated[p] = true
                end
                for _, t in ipairs(split(rec[2])) do
                    local st = redis.call('HMGET', ticket_key(t), 'status',
                                          'match', 'players')
                    if st[1] == 'matched' and st[2] == m then
                        local any = false
                        for _, p in ipairs(split(st[3])) do
                            any = any or seated[p] == true
                        end
                        if any then
                            redis.call('HSET', ticket_key(t), 'status',
                                       'playing', 'started_at',
                                       am[2] or tostring(now))
                        else
                            end_ticket(t, 'failed', 'no_show')
                        end
                        changed[#changed + 1] = t
                    end
                end
                redis.call('HSET', match_key(m), 'started',
                           am[2] or tostring(now))
                started[#started + 1] = m
            end
        end
    end
end

local nxt = from + count
if #ids < count then
    nxt = 0
end

return { 'OK', tostring(nxt), lost, started, changed }
