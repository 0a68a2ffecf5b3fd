-- alloc_prelude.lua: match.lua runs the allocator's allocate() (from
-- gameserver/allocator/common.lua), which reads the allocator's key prefix
-- from ARGV[1].  gen_lua.sh pastes that prelude into a block of its own
-- that starts with these lines: inside the block ARGV[1] is the
-- allocator's prefix (match.lua's ARGV[5]), and only allocate() leaves it.

local ARGV = { ARGV[5] }
