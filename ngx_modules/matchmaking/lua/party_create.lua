-- party_create.lua: a player opens a party and leads it.
--
-- ARGV  prefix, party id, player id, ttl ms
-- Reply {'OK', party id} | {'IN_PARTY', party id}
--
-- A player is in at most one party: party_of:<player> points at it.  The
-- party id is unguessable and is the invitation: whoever has it may join.

local party, player, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])

local current = redis.call('GET', party_of_key(player))
if current and redis.call('EXISTS', party_key(current)) == 1 then
    return { 'IN_PARTY', current }
end

redis.call('HSET', party_key(party), 'leader', player, 'members', player)
redis.call('PEXPIRE', party_key(party), ttl)
redis.call('SET', party_of_key(player), party, 'PX', ttl)

return { 'OK', party }
