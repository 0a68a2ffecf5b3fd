-- allocate.lua: give a match a live Ready server, atomically.
--
-- KEYS[1] match record, KEYS[2] Ready index of region+mode (+build)
-- ARGV    prefix, match id, region, mode, build ('' = any), players
-- Reply   {'OK', id, addr, port, match, players, mode, state, existing}
--         | {'NO_SERVER'} | {'MATCH_GONE', server id}
--
-- The work is allocate() in common.lua, which the matchmaker's match.lua
-- shares.  KEYS name what it touches, for a reader and for a cluster-aware
-- client; allocate() spells the same keys from the prefix.

return allocate(ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]) or 0)
