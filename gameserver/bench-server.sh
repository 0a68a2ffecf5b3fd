#!/bin/sh
# bench-server.sh: tick duration and bandwidth of one game server under
# 64 bots, at 30 and 60 Hz.  Prints one row per rate:
#   server_tick_<hz>hz_64bots <p50_us> <p99_us> <budget_us> <bytes_out_per_s_per_player>
# and one more at 60 Hz while 8 other loopback addresses send raw ENet
# CONNECTs as fast as one Python thread can (what the server absorbs):
#   server_tick_60hz_64bots_flood <p50_us> <p99_us> <budget_us> <connects_per_s> <dropped_per_s>
# Needs a Redis (GAME_REDIS, default 127.0.0.1:6379) and a built gameserver.
# UDP ports: GAME_BENCH_UDP_BASE + hz (22700).
set -eu
cd "$(dirname "$0")"
R=${GAME_REDIS:-127.0.0.1:6379}
SECS=${GAME_BENCH_SECONDS:-15}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/k.pem"
openssl ec -in "$tmp/k.pem" -pubout -out "$tmp/k.pub" 2>/dev/null
UDP=${GAME_BENCH_UDP_BASE:-22700}
for run in 30 60 60flood; do
    hz=${run%flood}
    p="bench$$-$run:"
    port=$((UDP + hz))
    [ "$run" = "$hz" ] || port=$((port + 1))
    build/game-server --id "bench-$hz" --port $port --redis "$R" --prefix "$p" \
        --ticket-key "k=$tmp/k.pub" --tick $hz --max-players 64 \
        --max-peers-per-ip 64 --match-seconds "$SECS" --score-limit 0 \
        --max-matches 1 > "$tmp/s$run.out" 2> "$tmp/s$run.err" &
    spid=$!
    sleep 1
    if [ "$run" != "$hz" ]; then
        /usr/bin/python3 - "$port" $((SECS + 3)) > "$tmp/flood" <<'PY' &
import random, socket, struct, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
socks = []
for i in range(2, 10):
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.%d" % i, 0))
        s.setblocking(False)
        socks.append(s)
sent, end, k = 0, time.monotonic() + secs, 0
while time.monotonic() < end:
    d = struct.pack("!HH", 0x8FFF, k & 0xFFFF) + struct.pack(
        "!BBHHBBIIIIIIIIII", 0x82, 0xFF, 1, 0, 0xFF, 0xFF, 1392, 32768, 2,
        0, 0, 5000, 2, 2, random.getrandbits(32), 0)
    try:
        socks[k % len(socks)].sendto(d, ("127.0.0.1", port))
        sent += 1
    except OSError:
        pass
    k += 1
print(sent / secs)
PY
        fpid=$!
    fi
    build/game-bot --direct --redis "$R" --prefix "$p" \
        --ticket-signing-key "k=$tmp/k.pem" --players 64 \
        --duration $((SECS + 10)) > "$tmp/b$run.out" 2>&1 || true
    wait $spid || true
    [ "$run" = "$hz" ] || wait $fpid || true
    /usr/bin/python3 - "$tmp/s$run.out" "$hz" "$run" "$tmp/flood" <<'PY'
import json, sys
res = [json.loads(l)["result"] for l in open(sys.argv[1])
       if '"match_end"' in l][0]
t = res["tick"]
if sys.argv[3] == sys.argv[2]:
    print("server_tick_%shz_64bots %.0f %.0f %d %.0f" % (
        sys.argv[2], t["p50_us"], t["p99_us"], 1000000 // int(sys.argv[2]),
        res["bytes_per_s_per_player"]["out"]))
else:
    secs = res["duration_ms"] / 1000.0
    print("server_tick_%shz_64bots_flood %.0f %.0f %d %.0f %.0f" % (
        sys.argv[2], t["p50_us"], t["p99_us"], 1000000 // int(sys.argv[2]),
        float(open(sys.argv[4]).read()),
        res["guard"]["connects_dropped"] / secs))
PY
    redis-cli -u "redis://$R" --scan --pattern "$p*" | xargs -r redis-cli -u "redis://$R" del > /dev/null
done
