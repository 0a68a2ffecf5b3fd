-- claim.lua: turn the tickets the engine put together into a match.
--
-- ARGV  prefix, queue, fence, match id, then per ticket: ticket id, team
-- Reply {'OK'} | {'FENCED'} | {'GONE', ticket id, ...}
--
-- All or nothing: if any ticket is no longer queued (cancelled, expired,
-- or claimed by a matcher that held the lease before us), nothing changes
-- and the caller drops those tickets and forms matches again.  A ticket
-- can be claimed once, so a player is in at most one match, ever.

local q, fence, match = ARGV[2], ARGV[3], ARGV[4]

if not lease_ok(q, fence) then
    return { 'FENCED' }
end

local gone = {}
for i = 5, #ARGV, 2 do
    if status_of(ARGV[i]) ~= 'queued' then
        gone[#gone + 1] = ARGV[i]
    end
end
if #gone > 0 then
    table.insert(gone, 1, 'GONE')
    return gone
end

local now = tostring(now_ms())
for i = 5, #ARGV, 2 do
    redis.call('HSET', ticket_key(ARGV[i]), 'status', 'matched',
               'match', match, 'team', ARGV[i + 1], 'matched_at', now)
end

return { 'OK' }
