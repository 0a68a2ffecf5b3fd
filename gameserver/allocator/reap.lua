-- reap.lua: forget the servers that died.
--
-- No KEYS.  ARGV: prefix, [grace in ms, 30000].  Reply {'OK', count}
--
-- Dead here means: no heartbeat key (its ttl lapsed) and no beat within
-- the grace (the record's 'beat', written by every heartbeat).  The grace
-- is what lets a busy server whose Redis blinked for longer than its ttl
-- resume its match (heartbeat.lua) instead of being forgotten with it.
--
-- Allocation never needs this (it skips and drops dead servers as it
-- meets them); reaping frees the records, host load and matches of
-- servers that died while busy.  It walks the whole fleet, so it is an
-- operator or fleet manager task, run every few seconds at most.

local grace = tonumber(ARGV[2]) or 30000
local now = tonumber(now_ms())
local n = 0

for _, id in ipairs(redis.call('SMEMBERS', P .. 'servers')) do
    if redis.call('EXISTS', hb_key(id)) == 0 then
        local beat = tonumber(redis.call('HGET', server_key(id), 'beat'))
        if not beat or now - beat > grace then
            local s = load_server(id)
            if s then
                forget(s)
            end
            redis.call('DEL', server_key(id))
            redis.call('SREM', P .. 'servers', id)
            n = n + 1
        end
    end
end

return { 'OK', tostring(n) }
