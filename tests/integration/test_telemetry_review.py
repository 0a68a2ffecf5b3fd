"""Players the anti-cheat flagged for review (tel_suspicion) earn nothing
from a match, neither rewards (game_econ_exclude_flagged) nor scores
(game_lb_exclude_flagged), while their unflagged teammates do; with the
directives off, both do.

The outcome is the matchmaker's own (mm_match_outcome over a session, its
players and a review flag), published on mm:outcomes as the matchmaker
publishes it; the economy and the leaderboards take it through their
consumer groups."""

import json
import os
import random
import uuid

import redis

from auth_helpers import psql
from lb_helpers import applied, wait
from mm_helpers import device_player


def match_with_a_player_under_review(s):
    """A finished duel of two players of one team who both won; the first
    is flagged for review.  Answers (outcome, flagged, clean, kills)."""
    flagged, _ = device_player(s)
    clean, _ = device_player(s)
    kills = 10 ** 9 + random.randrange(10 ** 6)
    match = str(uuid.uuid4())
    psql(s, "INSERT INTO game_sessions (id, mode, region) "
            "VALUES (%s, 'duel', 'local')", match)
    for p in (flagged, clean):
        psql(s, "INSERT INTO game_session_players (session_id, player_id, "
                "team, result, stats) VALUES (%s, %s, 0, 'win', %s)",
             match, p, json.dumps({"kills": kills}))
    psql(s, "INSERT INTO tel_suspicion (player_id, score, flagged_at) "
            "VALUES (%s, 500, now())", flagged)
    o = psql(s, "SELECT mm_match_outcome(%s, 'applied')", match)[0][0]
    assert {p["player_id"]: p["under_review"] for p in o["players"]} == \
        {flagged: True, clean: False}
    redis.Redis(port=s.redis_port).xadd(
        "mm:outcomes", {"match_id": match, "outcome": json.dumps(o)})
    return o, flagged, clean, kills


def rewarded(s, o):
    """Once the economy took the outcome: {player: (soft, xp)}."""
    def rows():
        r = psql(s, "SELECT player_id::text, soft, xp FROM "
                    "econ_match_rewards WHERE match_id = %s", o["match_id"])
        return r if len(r) == len(o["players"]) else None
    return {p: (soft, xp) for p, soft, xp in
            wait(rows, what="the match's rewards")}


def scores(s, o):
    """Once the leaderboards took the outcome: {player: kills}."""
    applied(s, o)
    ids = [p["player_id"] for p in o["players"]]
    return dict(psql(s, "SELECT player_id::text, score FROM "
                        "leaderboard_entries WHERE leaderboard = 'kills' "
                        "AND region = '*' AND player_id = ANY(%s::uuid[])",
                     ids))


def workers(s):
    master = s.pid("nginx")
    found = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            found.add(int(d))
    return found


def reload_with(s, conf):
    """Reload nginx with conf and wait until every worker of the old one
    has left, so that no old consumer takes what comes next."""
    old = workers(s)
    with open(s.nginx_conf, "w") as f:
        f.write(conf)
    r = s.nginx("-s", "reload")
    assert r.returncode == 0, r.stderr
    wait(lambda: not (workers(s) & old) and workers(s), timeout=60,
         what="the old workers to leave")
    s.wait_ready()


def test_a_player_under_review_earns_nothing_from_a_match(stack):
    o, flagged, clean, kills = match_with_a_player_under_review(stack)

    got = rewarded(stack, o)
    assert got[clean] == (100, 100)             # a win (test.conf)
    assert got[flagged] == (0, 0)
    assert psql(stack, "SELECT xp FROM players WHERE id = %s",
                flagged) == [(0,)]

    assert scores(stack, o) == {clean: kills}


def test_with_the_directives_off_a_player_under_review_scores(stack):
    s = stack
    with open(s.nginx_conf) as f:
        original = f.read()
    assert "game_econ_exclude_flagged   on;" in original
    assert "game_lb_exclude_flagged on;" in original
    off = original.replace("game_econ_exclude_flagged   on;",
                           "game_econ_exclude_flagged   off;") \
                  .replace("game_lb_exclude_flagged on;",
                           "game_lb_exclude_flagged off;")
    try:
        reload_with(s, off)
        o, flagged, clean, kills = match_with_a_player_under_review(s)
        got = rewarded(s, o)
        assert got[clean] == (100, 100)
        assert got[flagged] == (100, 100)
        assert scores(s, o) == {clean: kills, flagged: kills}
    finally:
        reload_with(s, original)
