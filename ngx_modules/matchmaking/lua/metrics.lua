-- metrics.lua: what a Prometheus scrape reads of the queues and the fleet.
--
-- ARGV  prefix, allocator prefix, queue, [queue ...]
-- Reply a JSON text:
--   {"queues": {q: [queued tickets, matches in progress], ...},
--    "servers": {region: {state: n, ...}, ...},
--    "seated": {region: players seated in matches being played, ...}}
--
-- O(queues + servers): the scrape interval (15 s or so) bounds the cost.
-- A server whose heartbeat is gone counts as "Lost", whatever its record
-- says: that is what the allocator will make of it.

local AP = ARGV[2]
local out = { queues = {}, servers = {}, seated = {} }

for i = 3, #ARGV do
    local q = ARGV[i]
    out.queues[q] = { redis.call('ZCARD', live_key(q)),
                      redis.call('ZCARD', active_key(q)) }
end

for _, id in ipairs(redis.call('SMEMBERS', AP .. 'servers')) do
    local s = redis.call('HMGET', AP .. 'server:' .. id, 'region', 'state',
                         'match')
    local region, state = s[1], s[2]
    if region and state then
        if state ~= 'Shutdown'
           and redis.call('EXISTS', AP .. 'hb:' .. id) == 0 then
            state = 'Lost'
        end
        local r = out.servers[region] or {}
        r[state] = (r[state] or 0) + 1
        out.servers[region] = r

        if state == 'Playing' and s[3] and s[3] ~= '' then
            local seated = redis.call('HGET', AP .. 'match:' .. s[3],
                                      'seated')
            local n = 0
            if seated and seated ~= '' then
                n = select(2, string.gsub(seated, ',', ',')) + 1
            end
            out.seated[region] = (out.seated[region] or 0) + n
        end
    end
end

return cjson.encode(out)
