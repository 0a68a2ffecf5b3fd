-- finish.lua: a match is over: its players' tickets end, so that they may
-- queue again.
--
-- ARGV  prefix, match id, 'finished' | 'failed', player id, ...
-- Reply {'OK', tickets ended}
--
-- Only tickets still "matched" to this very match change: a player who
-- already queued again keeps the new ticket.

local match, status, n = ARGV[2], ARGV[3], 0

for i = 4, #ARGV do
    local id = redis.call('GET', player_key(ARGV[i]))
    if id then
        local t = redis.call('HMGET', ticket_key(id), 'status', 'match')
        if t[1] == 'matched' and t[2] == match then
            redis.call('HSET', ticket_key(id), 'status', status,
                       'ended', tostring(now_ms()))
            n = n + 1
        end
    end
end

return { 'OK', tostring(n) }
