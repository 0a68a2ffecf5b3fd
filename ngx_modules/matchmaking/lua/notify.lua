-- notify.lua: tickets whose status just changed, as status.lua shows
-- them, for those of their players who are online to hear it.
--
-- ARGV  prefix, push prefix (the core's "game:push:"), ticket id, ...
-- Reply {{ticket id, {field, value, ...}, {online player, ...}}, ...}
--       for the tickets that still exist and have a player online
--
-- Online is the core's presence: some nginx worker subscribes to the
-- player's push channel, which it does while it holds their WebSocket.
-- Only those players are sent a status (each signed for them): a ticket
-- nobody watches costs this script and nothing more.

local push = ARGV[2]
local out = {}

for i = 3, #ARGV do
    local fields = redis.call('HGETALL', ticket_key(ARGV[i]))
    local players = {}

    for k = 1, #fields, 2 do
        if fields[k] == 'players' then
            players = split(fields[k + 1])
        end
    end

    local online = {}
    for _, p in ipairs(players) do
        if redis.call('PUBSUB', 'NUMSUB', push .. p)[2] > 0 then
            online[#online + 1] = p
        end
    end

    if #online > 0 then
        out[#out + 1] = { ARGV[i], fields, online }
    end
end

return out
