-- finish.lua: a match is over (its server's result was applied): end its
-- tickets, so that the players may queue again.
--
-- ARGV  prefix, match id, 'finished' | 'aborted', player id, ...
--       (the players the result lists: those who joined the server)
-- Reply {'OK', tickets ended, {ticket ended, ...}}
--
-- A ticket none of whose players joined fails with reason "no_show"; in
-- an aborted match the others fail with reason "aborted"; in a match
-- played out they are "finished".  Only tickets still held by this very
-- match change: a player who already queued again keeps the new ticket.
-- Idempotent: a second call finds nothing held.

local match, outcome = ARGV[2], ARGV[3]

local joined = {}
for i = 4, #ARGV do
    joined[ARGV[i]] = true
end

local rec = redis.call('HMGET', match_key(match), 'tickets', 'queue')
local n, ended = 0, {}

for _, t in ipairs(split(rec[1])) do
    local st = redis.call('HMGET', ticket_key(t), 'status', 'match',
                          'players')
    if HOLDS[st[1] or ''] and st[2] == match then
        local came = false
        for _, p in ipairs(split(st[3])) do
            came = came or joined[p] == true
        end
        if not came then
            end_ticket(t, 'failed', 'no_show')
        elseif outcome == 'aborted' then
            end_ticket(t, 'failed', 'aborted')
        else
            end_ticket(t, 'finished', '')
        end
        n = n + 1
        ended[n] = t
    end
end

if rec[2] then
    redis.call('ZREM', active_key(rec[2]), match)
    redis.call('HSET', match_key(match), 'ended', tostring(now_ms()))
end

return { 'OK', tostring(n), ended }
