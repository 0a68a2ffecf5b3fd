#!/bin/sh
# bench-server.sh: tick duration and bandwidth of one game server under
# 64 bots, at 30 and 60 Hz.  Prints one row per rate:
#   server_tick_<hz>hz_64bots <p50_us> <p99_us> <budget_us> <bytes_out_per_s_per_player>
# Needs a Redis (GAME_REDIS, default 127.0.0.1:6379) and a built gameserver.
set -eu
cd "$(dirname "$0")"
R=${GAME_REDIS:-127.0.0.1:6379}
SECS=${GAME_BENCH_SECONDS:-15}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/k.pem"
openssl ec -in "$tmp/k.pem" -pubout -out "$tmp/k.pub" 2>/dev/null
for hz in 30 60; do
    p="bench$$-$hz:"
    port=$((22700 + hz))
    build/game-server --id "bench-$hz" --port $port --redis "$R" --prefix "$p" \
        --ticket-key "k=$tmp/k.pub" --tick $hz --max-players 64 \
        --max-peers-per-ip 64 --match-seconds "$SECS" --score-limit 0 \
        --max-matches 1 > "$tmp/s$hz.out" 2> "$tmp/s$hz.err" &
    spid=$!
    sleep 1
    build/game-bot --direct --redis "$R" --prefix "$p" \
        --ticket-signing-key "k=$tmp/k.pem" --players 64 \
        --duration $((SECS + 10)) > "$tmp/b$hz.out" 2>&1 || true
    wait $spid || true
    /usr/bin/python3 - "$tmp/s$hz.out" "$hz" <<'PY'
import json, sys
res = [json.loads(l)["result"] for l in open(sys.argv[1])
       if '"match_end"' in l][0]
t = res["tick"]
print("server_tick_%shz_64bots %.0f %.0f %d %.0f" % (
    sys.argv[2], t["p50_us"], t["p99_us"], 1000000 // int(sys.argv[2]),
    res["bytes_per_s_per_player"]["out"]))
PY
    redis-cli -u "redis://$R" --scan --pattern "$p*" | xargs -r redis-cli -u "redis://$R" del > /dev/null
done
