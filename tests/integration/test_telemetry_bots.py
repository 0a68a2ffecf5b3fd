"""Anti-cheat end to end: real bots matched through the backend play on a
real game-server, which reports their matches on the telemetry stream
(--telemetry, gameserver/server/gs_telemetry.c); the writer's rules score
them.  Each cheat mode of game-bot must end with its cheater flagged for
review, with evidence of the rule it broke, and the honest bot of the
same match not.

The bots use the `botpair` mode (conf/test.conf), a queue of their own;
telemetry judges it by its "default" game_tel_mode (test.conf)."""

import json
import os
import socket
import subprocess
import time
import uuid

import pytest
import redis
import requests

from auth_helpers import psql
from tel_helpers import admin, wait_until

BUILD = os.path.join(os.path.dirname(__file__), "..", "..", "gameserver",
                     "build")
SERVER_BIN = os.path.join(BUILD, "game-server")
BOT_BIN = os.path.join(BUILD, "game-bot")


def free_udp_port():
    for port in range(21950, 21999):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free UDP port in 21950-21998")


@pytest.fixture
def server(stack, tmp_path):
    """A game server for one match of the botpair mode."""
    priv = os.path.join(stack.var, "keys", "jwt-1.pem")
    pub = str(tmp_path / "jwt-1.pub.pem")
    subprocess.run(["openssl", "ec", "-in", priv, "-pubout", "-out", pub],
                   check=True, capture_output=True)
    sid = "telbot-" + uuid.uuid4().hex[:6]
    p = subprocess.Popen(
        [SERVER_BIN, "--id", sid, "--port", str(free_udp_port()), "--redis",
         "127.0.0.1:%d" % stack.redis_port, "--mode", "botpair",
         "--ticket-key", "1=" + pub, "--match-seconds", "6",
         "--max-matches", "1", "--join-timeout", "15",
         "--telemetry", "tel:server"],
        stdout=open(tmp_path / "server.out", "w"),
        stderr=open(tmp_path / "server.err", "w"))
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    try:
        wait_until(lambda: rds.hget("game:server:" + sid, "state") == "Ready",
                   timeout=5, what="a Ready game server")
        yield sid
    finally:
        p.terminate()
        p.wait(timeout=30)


def play(stack, cheat):
    """Two bots through sign-in and matchmaking, the first one cheating;
    their player ids and the match's."""
    p = subprocess.run([BOT_BIN, "--api", stack.base_url, "--mode",
                        "botpair", "--players", "2", "--duration", "12",
                        "--match-timeout", "20", "--cheat", cheat,
                        "--cheaters", "1"],
                       capture_output=True, text=True, timeout=60)
    lines = p.stdout.strip().splitlines()
    assert lines, "no summary; stderr: %s" % p.stderr
    summary = json.loads(lines[-1])
    bots = summary["bots"]
    assert len(bots) == 2 and all(b["match_id"] for b in bots), summary
    assert bots[0]["match_id"] == bots[1]["match_id"]
    return bots[0]["player"], bots[1]["player"], bots[0]["match_id"]


@pytest.mark.parametrize("cheat,rule", [("speed", "speed"),
                                        ("firerate", "fire_rate"),
                                        ("bounds", "teleport")])
def test_a_cheating_bot_is_flagged_and_the_honest_one_is_not(stack, server,
                                                             cheat, rule):
    cheater, honest, match = play(stack, cheat)

    # the match's last word is written once the server's telemetry is
    wait_until(lambda: psql(stack, "SELECT count(*) FROM game_events "
                                   "WHERE session_id = %s "
                                   "AND kind = 'match.end'",
                            match)[0][0] == 1,
               timeout=30, what="the match's end in game_events")
    # every sample of the match is the server's, for players it seated
    kinds = dict(psql(stack, "SELECT kind, count(*) FROM game_events "
                             "WHERE session_id = %s GROUP BY kind", match))
    assert kinds.get("match.start") == 1 and kinds.get("position", 0) >= 4
    assert {r[0] for r in psql(stack, "SELECT DISTINCT player_id::text "
                                      "FROM game_events WHERE session_id = "
                                      "%s AND player_id IS NOT NULL",
                               match)} == {cheater, honest}

    assert psql(stack, "SELECT tel_player_flagged(%s), "
                       "tel_player_flagged(%s)", cheater, honest) == \
        [(True, False)]
    rules = {r[0] for r in psql(stack, "SELECT DISTINCT rule FROM "
                                       "tel_evidence WHERE player_id = %s",
                                cheater)}
    assert rule in rules, rules
    assert psql(stack, "SELECT count(*) FROM tel_evidence "
                       "WHERE player_id = %s", honest) == [(0,)]

    # the admin sees the cheater among the flagged, with the evidence
    r = requests.get(stack.url("/admin/telemetry/flagged?limit=500"),
                     headers=admin(stack), timeout=10)
    assert r.status_code == 200, r.text
    listed = {p["player_id"]: p for p in r.json()["players"]}
    assert cheater in listed and honest not in listed
    assert any(e["rule"] == rule for e in listed[cheater]["evidence"])
