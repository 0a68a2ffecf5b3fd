-- party_get.lua: a party's leader and members.
--
-- ARGV  prefix, party id
-- Reply {'OK', leader, members} | {'NONE'}

local p = redis.call('HMGET', party_key(ARGV[2]), 'leader', 'members')
if not p[1] then
    return { 'NONE' }
end

return { 'OK', p[1], p[2] }
