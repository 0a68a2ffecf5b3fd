-- expire.lua: end tickets that waited too long, and forget old entries.
--
-- ARGV  prefix, queue, fence, oldest stream id to keep, ticket id, ...
-- Reply {'OK', expired count, {expired ticket, ...}} | {'FENCED'}
--
-- The queue's stream holds entries of tickets already matched, cancelled
-- or expired; trimming by id (time) keeps it as long as the maximum wait,
-- so that a matcher taking over reads a bounded queue.

local q, fence, minid = ARGV[2], ARGV[3], ARGV[4]

if not lease_ok(q, fence) then
    return { 'FENCED' }
end

local n, ended = 0, {}
for i = 5, #ARGV do
    local id = ARGV[i]
    if status_of(id) == 'queued' then
        end_ticket(id, 'expired', 'max_wait')
        n = n + 1
        ended[n] = id
    end
    redis.call('ZREM', live_key(q), id)
end

redis.call('XTRIM', queue_key(q), 'MINID', minid)

return { 'OK', tostring(n), ended }
