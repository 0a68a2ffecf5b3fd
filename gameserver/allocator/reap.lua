-- reap.lua: forget every server whose heartbeat has lapsed.
--
-- No KEYS.  ARGV: prefix.  Reply {'OK', count}
--
-- Allocation never needs this (it skips and drops dead servers as it
-- meets them); reaping frees the records, host load and matches of
-- servers that died while busy.  It walks the whole fleet, so it is an
-- operator or fleet manager task, run every few seconds at most.

local n = 0

for _, id in ipairs(redis.call('SMEMBERS', P .. 'servers')) do
    if redis.call('EXISTS', hb_key(id)) == 0 then
        local s = load_server(id)
        if s then
            forget(s)
        end
        redis.call('DEL', server_key(id))
        redis.call('SREM', P .. 'servers', id)
        n = n + 1
    end
end

return { 'OK', tostring(n) }
