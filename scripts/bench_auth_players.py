"""make bench helper: N distinct players, each with its own access token,
and a wrk script that reads their profiles in turn.

    bench_auth_players.py BASE_URL N OUT.lua BASELINE.lua

BASELINE.lua sends the same requests (the same tokens, one per request) to
`return 200`: wrk's own cost of a scripted request is then in both runs,
and the ratio is nginx's alone.

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
    base, count = sys.argv[1], int(sys.argv[2])
    out, baseline = sys.argv[3], sys.argv[4]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        players = list(pool.map(lambda i: device_login(base, i), range(count)))

    write(out, players, None)
    write(baseline, players, "/bench/baseline")


def write(path, players, uri):
    with open(path, "w") as f:
        f.write("players = {\n")
        for pid, token in players:
            f.write('  {"%s", "Bearer %s"},\n'
                    % (uri or "/player/%s/profile" % pid, token))
        f.write("}\n")
        f.write("""
local n = #players
local next_start = 0
function setup(thread)
    thread:set("start", next_start)
    next_start = next_start + math.floor(n / 7) + 1
end
-- each request is formatted once, so that wrk spends on a request here
-- about what it spends on a plain one
local reqs = {}
function init(args)
    for k = 1, n do
        reqs[k] = wrk.format("GET", players[k][1],
                             { ["Authorization"] = players[k][2] })
    end
end
local i = 0
function request()
    i = i + 1
    return reqs[(start + i) % n + 1]
end
""")


if __name__ == "__main__":
    main()
