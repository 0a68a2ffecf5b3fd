-- read.lua: what happened in a queue since the matcher's last read.
--
-- ARGV  prefix, queue, from ('-' for the start, '(id' after an id), count
-- Reply {last id read or '', {ticket, rating, size, at, players, ...},
--        {ticket id that left, ...}, entries read}
--
-- Only tickets still queued come back: a matcher that reads the stream
-- from its start (a new lease, after a reload or a takeover) never sees
-- tickets long matched, cancelled or expired.  "gone" entries name
-- tickets cancelled after the matcher may have read them.  A call reads
-- at most "count" entries, so that a long queue is read in several short
-- scripts between which Redis serves everyone else.

local q, from, count = ARGV[2], ARGV[3], ARGV[4]

local entries = redis.call('XRANGE', queue_key(q), from, '+', 'COUNT', count)
local last, live, gone = '', {}, {}

for _, e in ipairs(entries) do
    last = e[1]
    local f = {}
    for i = 1, #e[2], 2 do
        f[e[2][i]] = e[2][i + 1]
    end
    if f.gone then
        gone[#gone + 1] = f.gone
    elseif f.ticket and status_of(f.ticket) == 'queued' then
        live[#live + 1] = f.ticket
        live[#live + 1] = f.rating or '0'
        live[#live + 1] = f.size or '0'
        live[#live + 1] = f.at or '0'
        live[#live + 1] = f.players or ''
    end
end

return { last, live, gone, #entries }
