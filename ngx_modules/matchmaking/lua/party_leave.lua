-- party_leave.lua: a member leaves a party.
--
-- ARGV  prefix, party id, player id
-- Reply {'OK', leader, members}   the party without the player ('' when
--                                 it is empty now: it is gone)
--     | {'NONE'}                  no such party, or not a member
--
-- The leader's leaving hands the lead to the longest-standing member.

local party, player = ARGV[2], ARGV[3]

local p = redis.call('HMGET', party_key(party), 'leader', 'members')
if not p[1] then
    return { 'NONE' }
end

local members, found = {}, false
for _, m in ipairs(split(p[2])) do
    if m == player then
        found = true
    else
        members[#members + 1] = m
    end
end

if not found then
    return { 'NONE' }
end

if redis.call('GET', party_of_key(player)) == party then
    redis.call('DEL', party_of_key(player))
end

if #members == 0 then
    redis.call('DEL', party_key(party))
    return { 'OK', '', '' }
end

local leader = p[1]
if leader == player then
    leader = members[1]
end

local list = table.concat(members, ',')
redis.call('HSET', party_key(party), 'leader', leader, 'members', list)

return { 'OK', leader, list }
