"""make bench helper: N distinct players, each with its own access token,
and a wrk script that reads their profiles in turn.

    bench_auth_players.py BASE_URL N OUT.lua

Players are guests (POST /auth/device: no password to hash), so ten
thousand of them take seconds.  Every wrk thread starts at its own place in
the list and walks it, so the workers see every token, as a realistic
population of players would make them do, and the verified-token cache is
measured rather than a single token.
"""

import concurrent.futures
import json
import sys
import urllib.request
import uuid


def device_login(base, n):
    body = json.dumps({"device_id": "bench-%s-%d" % (uuid.uuid4().hex, n)})
    req = urllib.request.Request(base + "/auth/device", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        t = json.load(r)
    return t["player_id"], t["access_token"]


def main():
    base, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        players = list(pool.map(lambda i: device_login(base, i), range(count)))

    with open(out, "w") as f:
        f.write("players = {\n")
        for pid, token in players:
            f.write('  {"/player/%s/profile", "Bearer %s"},\n' % (pid, token))
        f.write("}\n")
        f.write("""
local n = #players
local next_start = 0
function setup(thread)
    thread:set("start", next_start)
    next_start = next_start + math.floor(n / 7) + 1
end
local i = 0
function request()
    i = i + 1
    local p = players[(start + i) % n + 1]
    return wrk.format("GET", p[1], { ["Authorization"] = p[2] })
end
""")


if __name__ == "__main__":
    main()
