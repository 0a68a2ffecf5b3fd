"""Chaos: the whole loop under everyday trouble, then its invariants.

120 players in two modes (1v1, and 2v2 with parties of two) join, cancel,
play, or never show up, for about 40 seconds, on a real game-fleet, while
nginx reloads every 4 seconds, two busy game servers are killed with
SIGKILL, and Redis restarts once without its data.  Then, with everything
settled:

  1. no server ever held two matches at once (its own lifecycle lines);
  2. every allocation belongs to a match its players were told about (a
     status answer named it), but in the moments before Redis lost
     everything;
  3. no player waited on a ticket beyond the bound of how it ended: a
     no-show or an abort frees the players within the join timeout + 5 s,
     a lost server within its heartbeat ttl + game_mm_server_lost_after,
     and nothing stays queued, matched or playing at the end;
  4. every match the servers played to the end was applied exactly once
     (its session finished, each player's games counted once), but a
     result published just before Redis lost its streams.
"""

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest
import redis
import requests

from auth_helpers import psql
from mm_helpers import BOT_BIN, SERVER_BIN, device_player

FLEET_BIN = os.path.join(os.path.dirname(SERVER_BIN), "game-fleet")

JOIN_TIMEOUT = 3        # game-server --join-timeout
MATCH_SECONDS = 10      # game-server --match-seconds: longer than
                        # a no-show's bound, so a release at the end of
                        # the match would show
HB_TTL = 3              # the game servers' heartbeat ttl
LOST_AFTER = 5          # game_mm_server_lost_after in conf/test.conf
MAX_WAIT = 20           # max_wait of the chaos modes in conf/test.conf
SLACK = 3               # a matcher or consumer pass, a status poll
CHAOS_SECONDS = 40
TERMINAL = ("finished", "failed", "cancelled", "expired")


class Chaos:
    """The shared record of what players saw and what the chaos did."""

    def __init__(self, stack):
        self.stack = stack
        self.lock = threading.Lock()
        self.rounds = []
        self.kills = []             # (time, port)
        self.redis_restart = None   # (stopped at, started at)
        self.stop_joining = threading.Event()
        self.bots = []

    def add(self, rnd):
        with self.lock:
            self.rounds.append(rnd)


def poll(stack, auth, wait):
    try:
        r = requests.get(stack.url("/matchmaking/status"), headers=auth,
                         params={"wait": wait}, timeout=wait + 10)
    except requests.RequestException:
        return None, None
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, None


def play_round(chaos, group, mode, rng):
    """One ticket of a group (a solo player or a party): join, maybe
    cancel, wait, connect or not, until the ticket ends."""
    s = chaos.stack
    leader_id, leader = group[0]
    body = {"game_mode": mode,
            "regions": [{"region": "local", "latency_ms": 10}]}
    if len(group) > 1:
        party = requests.post(s.url("/party"), headers=leader,
                              timeout=10).json().get("party_id")
        if party is None:
            return
        for _, auth in group[1:]:
            requests.post(s.url("/party/%s/join" % party), headers=auth,
                          timeout=10)
        body["party_id"] = party

    try:
        r = requests.post(s.url("/matchmaking/join"), json=body,
                          headers=leader, timeout=10)
    except requests.RequestException:
        return
    if r.status_code != 202:
        time.sleep(0.5)         # 503 during the Redis restart, 409, 429
        return

    now = time.monotonic()
    rnds = [{"player": pid, "mode": mode, "joined": now, "status": "queued",
             "match": None, "matched": None, "port": None, "ended": None,
             "reason": None, "no_show": rng.random() < 0.2, "seen": []}
            for pid, _ in group]
    for rnd in rnds:
        chaos.add(rnd)
    cancel_at = now + rng.uniform(0, 2) if rng.random() < 0.15 else None

    def follow(member, rnd):
        pid, auth = member
        connected = False
        while True:
            if cancel_at and member is group[0] and \
                    time.monotonic() >= cancel_at:
                try:
                    requests.delete(s.url("/matchmaking/ticket"),
                                    headers=auth, timeout=10)
                except requests.RequestException:
                    pass
            code, st = poll(s, auth, 0 if cancel_at else 2)
            t = time.monotonic()
            if code == 404:
                # the ticket is gone: Redis lost it
                rnd.update(status="vanished", ended=t)
                return
            if code != 200 or st is None:
                time.sleep(0.3)
                continue
            if st.get("match_id") and rnd["match"] is None:
                rnd["match"] = st["match_id"]
            rnd["seen"].append(st["status"])
            if st["status"] in ("matched", "playing") and \
                    "connection_ticket" in st:
                if rnd["matched"] is None:
                    rnd["matched"] = t
                    rnd["port"] = st["server"]["port"]
                if not connected and not rnd["no_show"]:
                    connected = True
                    bot = subprocess.Popen(
                        [BOT_BIN, "--server", "127.0.0.1:%d"
                         % st["server"]["port"], "--ticket",
                         st["connection_ticket"], "--duration",
                         str(MATCH_SECONDS + JOIN_TIMEOUT + 2),
                         "--input-hz", "10"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    with chaos.lock:
                        chaos.bots.append(bot)
            if st["status"] in TERMINAL:
                if rnd["matched"] is None and st.get("match_id"):
                    rnd["matched"] = t      # matched and ended between polls
                rnd.update(status=st["status"], reason=st.get("reason"),
                           ended=t)
                return
            if cancel_at:
                time.sleep(0.2)

    threads = [threading.Thread(target=follow, args=(m, rnd))
               for m, rnd in zip(group, rnds)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def group_life(chaos, group, mode, seed):
    rng = random.Random(seed)
    time.sleep(rng.uniform(0, 3))
    while not chaos.stop_joining.is_set():
        play_round(chaos, group, mode, rng)
        time.sleep(rng.uniform(0.2, 1.5))


def fleet_servers(status):
    try:
        with open(status) as f:
            return [json.loads(l) for l in f if l.startswith("{")]
    except (FileNotFoundError, ValueError):
        return []


def disorder(chaos, fleet_status):
    """Reloads every 4 s, two SIGKILLs of busy servers, a Redis restart."""
    s = chaos.stack
    rds = redis.Redis(port=s.redis_port, decode_responses=True)
    t0 = time.monotonic()
    plan = {12: "kill", 22: "kill", 28: "redis"}
    done = set()
    while time.monotonic() - t0 < CHAOS_SECONDS:
        el = int(time.monotonic() - t0)
        if el % 4 == 0 and ("reload", el) not in done:
            done.add(("reload", el))
            s.nginx("-s", "reload")
        for at, what in plan.items():
            if el >= at and at not in done:
                done.add(at)
                if what == "kill":
                    busy = []
                    for sv in fleet_servers(fleet_status):
                        try:
                            st = rds.hget("game:server:" + sv["id"], "state")
                        except redis.RedisError:
                            st = None
                        if st in ("Allocated", "Playing"):
                            busy.append(sv)
                    if busy:
                        victim = random.choice(busy)
                        os.kill(victim["pid"], signal.SIGKILL)
                        chaos.kills.append((time.monotonic(), victim["port"]))
                else:
                    stopped = time.monotonic()
                    s.run("stop", "redis")
                    time.sleep(1)
                    s.run("start", "redis")
                    chaos.redis_restart = (stopped, time.monotonic())
        time.sleep(0.2)


@pytest.fixture
def chaos_fleet(stack, tmp_path):
    priv = os.path.join(stack.var, "keys", "jwt-1.pem")
    pub = str(tmp_path / "jwt-1.pub.pem")
    subprocess.run(["openssl", "ec", "-in", priv, "-pubout", "-out", pub],
                   check=True, capture_output=True)
    conf = str(tmp_path / "fleet.conf")
    status = str(tmp_path / "fleet.status")
    out = str(tmp_path / "fleet.out")
    with open(conf, "w") as f:
        f.write("redis 127.0.0.1:%d\nprefix game:\nserver %s\nstatus %s\n"
                "reap 2\nreap-grace 10\ndrain 30\nhung 5\n"
                "register-timeout 15\n" % (stack.redis_port, SERVER_BIN,
                                           status))
        for a in ("--ticket-key", "1=" + pub, "--join-timeout",
                  str(JOIN_TIMEOUT), "--match-seconds", str(MATCH_SECONDS),
                  "--tick", "10", "--score-limit", "0"):
            f.write("server-arg %s\n" % a)
        f.write("region local min 4 max 16 buffer 4 ports 23000-23049 "
                "mode chaos addr 127.0.0.1\n")
    fleet = subprocess.Popen([FLEET_BIN, "-c", conf, "run"],
                             stdout=open(out, "a"),
                             stderr=open(str(tmp_path / "fleet.err"), "a"))
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    end = time.monotonic() + 20
    while True:
        ready = [sv for sv in fleet_servers(status)
                 if rds.hget("game:server:" + sv["id"], "state") == "Ready"]
        if len(ready) >= 4:
            break
        assert time.monotonic() < end, "the chaos fleet never got Ready"
        time.sleep(0.2)
    yield status, out
    fleet.send_signal(signal.SIGTERM)
    try:
        fleet.wait(timeout=40)
    except subprocess.TimeoutExpired:
        fleet.kill()
    for sv in fleet_servers(status):
        try:
            os.kill(sv["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_chaos(stack, chaos_fleet):
    status, out = chaos_fleet
    chaos = Chaos(stack)

    players = [device_player(stack) for _ in range(120)]
    groups = [([p], "chaos1") for p in players[:50]] + \
             [([p], "chaos2") for p in players[50:80]] + \
             [(players[i:i + 2], "chaos2") for i in range(80, 120, 2)]

    lives = [threading.Thread(target=group_life, args=(chaos, g, m, i))
             for i, (g, m) in enumerate(groups)]
    for th in lives:
        th.start()
    disorder(chaos, status)

    chaos.stop_joining.set()
    # every ticket ends, at the latest a whole match after the last join
    for th in lives:
        th.join(timeout=MAX_WAIT + JOIN_TIMEOUT + MATCH_SECONDS + HB_TTL
                + LOST_AFTER + 30)
    stuck = [r for r in chaos.rounds if r["ended"] is None]
    assert not any(th.is_alive() for th in lives), stuck[:5]
    for bot in chaos.bots:
        try:
            bot.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bot.kill()
    time.sleep(SLACK)

    lines = []
    with open(out) as f:
        for l in f:
            if l.startswith("{"):
                lines.append(json.loads(l))
    restart = chaos.redis_restart
    assert restart, "the Redis restart did not happen"
    ms = lambda mono: time.time() * 1000 - (time.monotonic() - mono) * 1000

    if os.environ.get("GAME_CHAOS_SUMMARY"):
        from collections import Counter
        print("\nrounds", len(chaos.rounds), Counter(
            (r["status"], r["reason"]) for r in chaos.rounds))
        print("kills", chaos.kills, "restart", restart)
        print("events", Counter(l["event"] for l in lines))

    # -- 1. no server ever held two matches at once ------------------------
    holding = {}
    allocations = {}
    for l in lines:
        sid = l["server_id"]
        if l["event"] == "allocated":
            assert holding.get(sid) is None, \
                "%s got %s while holding %s" % (sid, l["match_id"],
                                                 holding[sid])
            holding[sid] = l["match_id"]
            allocations[l["match_id"]] = l
        elif l["event"] == "match_end":
            assert holding.get(sid) == l["result"]["match_id"], (sid, l)
            holding[sid] = None
    assert len(allocations) >= 20, "too few matches for a chaos test"

    # -- 2. every allocation was a match its players were told about -------
    told = {r["match"] for r in chaos.rounds if r["match"]}
    redis_lost = ms(restart[0]) - 2000, ms(restart[1]) + 1000
    phantom = [m for m, l in allocations.items() if m not in told
               and not redis_lost[0] <= l["ts_ms"] <= redis_lost[1]]
    assert not phantom, "allocated for nobody: %s" % phantom

    # -- 3. nobody waited beyond the bound of how their ticket ended -------
    kill_at = dict((port, t) for t, port in chaos.kills)
    late = []
    for r in chaos.rounds:
        if r["status"] == "vanished":
            continue
        if r["status"] in ("cancelled", "expired"):
            assert r["ended"] - r["joined"] <= MAX_WAIT + SLACK + 2, r
            continue
        if r["matched"] is None:
            continue
        waited = r["ended"] - r["matched"]
        if r["reason"] in ("no_show", "aborted"):
            bound = JOIN_TIMEOUT + 5
        elif r["reason"] == "server_lost":
            since = kill_at.get(r["port"], r["matched"])
            waited = r["ended"] - max(since, r["matched"])
            bound = HB_TTL + LOST_AFTER + SLACK
            if restart[0] - 1 <= r["ended"] <= restart[1] + 15:
                continue     # its server was forgotten with Redis' data
        else:
            bound = JOIN_TIMEOUT + MATCH_SECONDS + 5
        if waited > bound + SLACK:
            late.append((round(waited, 1), bound, r))
    assert not late, late[:5]
    assert any(r["reason"] == "no_show" for r in chaos.rounds)
    assert any(r["status"] == "finished" for r in chaos.rounds)
    assert any(r["status"] == "cancelled" for r in chaos.rounds)

    # -- 4. every result played to its end was applied, exactly once -------
    ends = [l["result"] for l in lines if l["event"] == "match_end"]
    played = [e for e in ends if e["reason"] != "abort"
              and e["players"] and e["match_id"] in told]
    assert played
    rows = dict(psql(stack, "SELECT id::text, status FROM game_sessions "
                            "WHERE id::text = ANY(%s)",
                     [e["match_id"] for e in played]))
    unapplied = [e["match_id"] for e in played
                 if rows.get(e["match_id"]) != "finished"
                 and not (redis_lost[0] - 3000 <= e["started_at_ms"]
                          + e["duration_ms"] <= redis_lost[1])]
    assert not unapplied, [(m, rows.get(m)) for m in unapplied]

    # each player's games in the chaos modes were counted once per match
    counted = psql(stack, """
        SELECT r.player_id::text, r.mode, r.games_played,
               (SELECT count(*) FROM game_session_players gp
                  JOIN game_sessions s ON s.id = gp.session_id
                 WHERE gp.player_id = r.player_id AND s.mode = r.mode
                   AND s.status = 'finished')
          FROM player_ratings r
         WHERE r.mode IN ('chaos1', 'chaos2')""")
    assert counted
    wrong = [c for c in counted if c[2] != c[3]]
    assert not wrong, wrong[:5]
