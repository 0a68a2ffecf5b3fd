-- party_of.lua: the party a player is in, with its members.
--
-- ARGV  prefix, player id
-- Reply {'OK', party id, leader, members} | {'NONE'}

local party = redis.call('GET', party_of_key(ARGV[2]))
if not party then
    return { 'NONE' }
end

local p = redis.call('HMGET', party_key(party), 'leader', 'members')
if not p[1] then
    return { 'NONE' }
end

for _, m in ipairs(split(p[2])) do
    if m == ARGV[2] then
        return { 'OK', party, p[1], p[2] }
    end
end

return { 'NONE' }
