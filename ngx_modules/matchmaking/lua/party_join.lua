-- party_join.lua: a player joins a party by its id.
--
-- ARGV  prefix, party id, player id, ttl ms, max members
-- Reply {'OK', leader, members, 'joined' | 'member'} | {'NONE'}
--     | {'IN_PARTY', party id} | {'FULL'}
--
-- Joining the party one is already in answers OK ('member'): a retried
-- request is not an error, and the members are not told twice.

local party, player = ARGV[2], ARGV[3]
local ttl, max = tonumber(ARGV[4]), tonumber(ARGV[5])

local p = redis.call('HMGET', party_key(party), 'leader', 'members')
if not p[1] then
    return { 'NONE' }
end

local members = {}
for m in string.gmatch(p[2], '[^,]+') do
    if m == player then
        return { 'OK', p[1], p[2], 'member' }
    end
    members[#members + 1] = m
end

local current = redis.call('GET', party_of_key(player))
if current and current ~= party
   and redis.call('EXISTS', party_key(current)) == 1
then
    return { 'IN_PARTY', current }
end

if #members >= max then
    return { 'FULL' }
end

members[#members + 1] = player
local list = table.concat(members, ',')
redis.call('HSET', party_key(party), 'members', list)
redis.call('PEXPIRE', party_key(party), ttl)
redis.call('SET', party_of_key(player), party, 'PX', ttl)

return { 'OK', p[1], list, 'joined' }
