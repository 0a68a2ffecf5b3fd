#!/bin/sh
# bench-server.sh: tick duration and bandwidth of one game server under
# bots on this machine.  Each run is one server, one match of
# GAME_BENCH_SECONDS, and prints one row (times in us, bytes per second
# per player sent by the server):
#   server_tick_<hz>hz_64bots <p50_us> <p99_us> <budget_us> <bytes_out_per_s_per_player>
#       30 and 60 Hz, 64 bots, delta snapshots (the default)
#   server_tick_60hz_64bots_flood <p50_us> <p99_us> <budget_us> <connects_per_s> <dropped_per_s>
#       while 8 other loopback addresses send raw ENet CONNECTs as fast as
#       one Python thread can (what the server absorbs)
#   server_tick_60hz_64bots_loss5 <p50_us> <p99_us> <budget_us> <bytes_out_per_s_per_player>
#       the bots drop 5 % of inputs and snapshots and add 100 ms of latency
#   server_bytes_60hz_64bots <whole_B/s> <delta_B/s>
#       bytes per player per second with --snapshots full (before delta
#       compression) and with deltas (the 60 Hz row)
#   server_players_60hz <players> <p99_us> <budget_us>
#       the most players (16, 32, 64: one process holds at most 64) whose
#       p99 stays under half the budget, and that p99
#   server_players_per_core_60hz <players> <processes> <p99_us> <budget_us> <reached>
#       game-server processes pinned together to one core (taskset -c 0),
#       GAME_BENCH_CORE_BOTS (64) bots each, their bots on another core:
#       1, 2, 4, ... processes until one's p99 passes half the budget (or
#       past GAME_BENCH_CORE_MAX, 32); the most players that stayed under
#       it, the worst process's p99 then, and whether the half-budget
#       limit was reached (1) or the cap was (0: a lower bound).  Needs
#       taskset and two cores.
# `bench-server.sh core` prints the players-per-core row only.
# Needs a Redis (GAME_REDIS, default 127.0.0.1:6379) and a built gameserver.
# UDP ports: GAME_BENCH_UDP_BASE (22700) + hz + a run number.
set -eu
cd "$(dirname "$0")"
R=${GAME_REDIS:-127.0.0.1:6379}
SECS=${GAME_BENCH_SECONDS:-15}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/k.pem"
openssl ec -in "$tmp/k.pem" -pubout -out "$tmp/k.pub" 2>/dev/null
UDP=${GAME_BENCH_UDP_BASE:-22700}
n=0

flood() {
    /usr/bin/python3 - "$1" $((SECS + 3)) > "$tmp/flood" <<'PY'
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
}

# match HZ PLAYERS "SERVER ARGS" "BOT ARGS" [flood]: one match; its result
# JSON in $tmp/result
match() {
    hz=$1 players=$2 sargs=$3 bargs=$4
    n=$((n + 1))
    p="bench$$-$n:"
    port=$((UDP + hz + n))
    # shellcheck disable=SC2086
    build/game-server --id "bench-$n" --port $port --redis "$R" --prefix "$p" \
        --ticket-key "k=$tmp/k.pub" --tick "$hz" --max-players 64 \
        --max-peers-per-ip 64 --match-seconds "$SECS" --score-limit 0 \
        --max-matches 1 $sargs > "$tmp/s.out" 2> "$tmp/s.err" &
    spid=$!
    sleep 1
    fpid=
    if [ "${5:-}" = flood ]; then
        flood $port &
        fpid=$!
    fi
    # shellcheck disable=SC2086
    build/game-bot --direct --redis "$R" --prefix "$p" --quiet \
        --ticket-signing-key "k=$tmp/k.pem" --players "$players" \
        --duration $((SECS + 10)) $bargs > "$tmp/b.out" 2>&1 || true
    wait $spid || true
    [ -z "$fpid" ] || wait $fpid || true
    grep '"match_end"' "$tmp/s.out" | head -1 > "$tmp/result"
    redis-cli -u "redis://$R" --scan --pattern "$p*" \
        | xargs -r redis-cli -u "redis://$R" del > /dev/null
}

# field EXPR: a number from the result (python expression over r)
field() {
    /usr/bin/python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read())["result"]
print("%.0f" % eval(sys.argv[2]))' "$tmp/result" "$1"
}

tick_row() {
    echo "$1 $(field 'r["tick"]["p50_us"]') $(field 'r["tick"]["p99_us"]')" \
         "$((1000000 / $2)) $(field 'r["bytes_per_s_per_player"]["out"]')"
}

if [ "${1:-}" != core ]; then
match 30 64 "" ""
tick_row server_tick_30hz_64bots 30

match 60 64 "" ""
tick_row server_tick_60hz_64bots 60
delta=$(field 'r["bytes_per_s_per_player"]["out"]')
p99_64=$(field 'r["tick"]["p99_us"]')

match 60 64 "" "" flood
echo "server_tick_60hz_64bots_flood $(field 'r["tick"]["p50_us"]')" \
     "$(field 'r["tick"]["p99_us"]') $((1000000 / 60))" \
     "$(cat "$tmp/flood" | cut -d. -f1)" \
     "$(field 'r["guard"]["connects_dropped"] * 1000 / r["duration_ms"]')"

match 60 64 "" "--loss 5 --latency 100"
tick_row server_tick_60hz_64bots_loss5 60

match 60 64 "--snapshots full" ""
echo "server_bytes_60hz_64bots $(field 'r["bytes_per_s_per_player"]["out"]') $delta"

# players per process: the largest count whose p99 stays under half the
# budget (64 is the most one process holds)
best=0 best_p99=0
for players in 16 32; do
    match 60 $players "" ""
    p99=$(field 'r["tick"]["p99_us"]')
    if [ "$p99" -lt $((1000000 / 60 / 2)) ]; then
        best=$players best_p99=$p99
    fi
done
if [ "$p99_64" -lt $((1000000 / 60 / 2)) ]; then
    best=64 best_p99=$p99_64
fi
echo "server_players_60hz $best $best_p99 $((1000000 / 60))"
fi

# players per core: K servers share core 0, each with CORE_BOTS bots (the
# bots on core 1, so that they do not take the servers' core)
CORE_BOTS=${GAME_BENCH_CORE_BOTS:-64}
CORE_MAX=${GAME_BENCH_CORE_MAX:-32}
# core_run K: the worst tick p99 of K servers on one core, in us
core_run() {
    k=$1 i=0 pids=
    while [ $i -lt "$k" ]; do
        i=$((i + 1)) n=$((n + 1))
        taskset -c 0 build/game-server --id "core-$n" \
            --port $((UDP + 100 + n)) --redis "$R" --prefix "bench$$-$n:" \
            --ticket-key "k=$tmp/k.pub" --tick 60 --max-players 64 \
            --max-peers-per-ip 64 --match-seconds "$SECS" --score-limit 0 \
            --max-matches 1 > "$tmp/core.$i.out" 2> /dev/null &
        pids="$pids $!"
    done
    sleep 1
    i=0 bpids=
    while [ $i -lt "$k" ]; do
        i=$((i + 1))
        taskset -c 1 build/game-bot --direct --redis "$R" \
            --prefix "bench$$-$((n - k + i)):" --quiet \
            --ticket-signing-key "k=$tmp/k.pem" --players "$CORE_BOTS" \
            --duration $((SECS + 10)) > /dev/null 2>&1 &
        bpids="$bpids $!"
    done
    for pid in $pids $bpids; do
        wait "$pid" || true
    done
    i=0
    while [ $i -lt "$k" ]; do
        i=$((i + 1))
        redis-cli -u "redis://$R" --scan --pattern "bench$$-$((n - k + i)):*" \
            | xargs -r redis-cli -u "redis://$R" del > /dev/null
    done
    cat "$tmp"/core.*.out | grep '"match_end"' | /usr/bin/python3 -c '
import json, sys
rs = [json.loads(l)["result"] for l in sys.stdin]
k = int(sys.argv[1])
# a process that published no result did not keep up at all
print(max(r["tick"]["p99_us"] for r in rs) if len(rs) == k else 10**9)' "$k"
    rm -f "$tmp"/core.*.out
}

if command -v taskset > /dev/null && [ "$(nproc)" -ge 2 ]; then
    half=$((1000000 / 60 / 2))
    best=0 best_k=0 best_p99=0 k=1 reached=0
    while [ $k -le "$CORE_MAX" ]; do
        p99=$(core_run $k)
        p99=${p99%.*}
        if [ "$p99" -ge $half ]; then
            reached=1
            break
        fi
        best=$((k * CORE_BOTS)) best_k=$k best_p99=$p99
        k=$((k * 2))
    done
    echo "server_players_per_core_60hz $best $best_k $best_p99" \
         "$((1000000 / 60)) $reached"
fi
