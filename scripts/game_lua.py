"""The Redis scripts' text exactly as the build embeds it, for the tests
and the bench: each generator prints one script when asked by name."""

import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MM = os.path.join(ROOT, "ngx_modules", "matchmaking")
ALLOC = os.path.join(ROOT, "gameserver", "allocator")


def mm_script(name):
    """A matchmaking script (ngx_modules/matchmaking/lua)."""
    return subprocess.run(["sh", os.path.join(MM, "gen_lua.sh"),
                           os.path.join(MM, "lua"), ALLOC, name],
                          check=True, capture_output=True, text=True).stdout


def alloc_script(name):
    """An allocator script (gameserver/allocator)."""
    return subprocess.run(["sh", os.path.join(ALLOC, "gen_scripts.sh"),
                           ALLOC, name],
                          check=True, capture_output=True, text=True).stdout
