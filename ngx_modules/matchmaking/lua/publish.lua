-- publish.lua: tell the other services what a finished match meant for
-- its players, once per match.
--
-- ARGV  prefix, match id, outcome (JSON, mm_result_apply's answer),
--       guard ttl in seconds
-- Reply {'OK', entry id} | {'DUPLICATE'}
--
-- The stream outcomes is what rewards, progression and leaderboards read
-- (through the core's event bus, each service its own group).  The guard
-- key and the XADD are one script: the results consumer publishes again
-- after a crash or a lost reply, and the stream still holds one entry per
-- match.

local match, outcome, ttl = ARGV[2], ARGV[3], ARGV[4]

if not redis.call('SET', P .. 'outcome:' .. match, '1', 'NX', 'EX', ttl) then
    return { 'DUPLICATE' }
end

local id = redis.call('XADD', P .. 'outcomes', 'MAXLEN', '~', '100000', '*',
                      'match_id', match, 'outcome', outcome)

return { 'OK', id }
