"""Helpers for the leaderboard tests: outcomes on mm:outcomes as the
matchmaker publishes them, the test clock (leaderboard_clock, honoured
because test.conf says game_lb_clock test), board reads and waits."""

import json
import os
import time
import uuid

import redis
import requests

from auth_helpers import psql


def rds(s):
    return redis.Redis(port=s.redis_port, decode_responses=True)


def player(pid, result="win", kills=0, deaths=0, flagged=False, team=0,
           rating_after=None, **extra):
    p = {"player_id": pid, "team": team, "result": result,
         "flagged": flagged, "kills": kills, "deaths": deaths,
         "rating_before": 1500, "rating_after": rating_after}
    p.update(extra)
    return p


def outcome(players, mode="duel", region="local", match=None):
    return {"outcome": "applied", "match_id": match or str(uuid.uuid4()),
            "mode": mode, "region": region, "reason": "time",
            "duration_ms": 60000, "players": players}


def publish(s, o):
    rds(s).xadd("mm:outcomes", {"match_id": o["match_id"],
                                "outcome": json.dumps(o)})
    return o


# the boards of conf/test.conf that take an outcome of each mode: kills,
# wins and daily_kills take every mode's
BOARDS = {"duel": 5, "squad": 4, "paging": 4, "recount": 4}


def applied(s, o):
    """Wait until the leaderboards took the outcome on every board of its
    mode (PostgreSQL) and Redis has it (the entry is acknowledged after)."""
    boards = BOARDS.get(o["mode"], 3)
    wait(lambda: psql(s, "SELECT count(*) FROM leaderboard_applied "
                         "WHERE source_id = %s",
                      "match:" + o["match_id"])[0][0] >= boards)
    wait(lambda: not rds(s).xpending("mm:outcomes", "leaderboard")
         ["pending"])


def drained(s):
    """Wait until the leaderboards took every outcome published so far."""
    def done():
        if not rds(s).exists("mm:outcomes"):
            return True
        for g in rds(s).xinfo_groups("mm:outcomes"):
            if g["name"] == "leaderboard":
                return g["pending"] == 0 and g.get("lag") == 0
        return False
    wait(done, what="the outcome stream to drain")


def wait(cond, timeout=20.0, what=None):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % (what or cond))
        time.sleep(0.1)


def get(s, path, **kw):
    return requests.get(s.url(path), timeout=10, **kw)


def board(s, name, **params):
    return get(s, "/leaderboards/" + name, params=params)


def fresh(s, name, pred, **params):
    """The board's page once "pred" holds for it: first pages are cached
    for a second and Redis takes writes after PostgreSQL."""
    def check():
        r = board(s, name, **params)
        return r.json() if r.status_code == 200 and pred(r.json()) else None
    return wait(check, what="board %s" % name)


def ids(page):
    return [e["player_id"] for e in page["entries"]]


def set_clock(s, at):
    """The leaderboards' "now" is "at" from now on (it keeps running)."""
    psql(s, "INSERT INTO leaderboard_clock (now_at, set_at) "
            "VALUES (%s, now()) ON CONFLICT (one) DO UPDATE "
            "SET now_at = excluded.now_at, set_at = excluded.set_at", at)


def clear_clock(s):
    psql(s, "DELETE FROM leaderboard_clock")


def admin(s):
    with open(os.path.join(s.var, "keys", "lb-admin.key")) as f:
        return {"Authorization": "Bearer " + f.read().strip()}


def new_player(s):
    """A player row (no sign-in needed) with a username."""
    name = "lb_" + uuid.uuid4().hex[:12]
    return psql(s, "INSERT INTO players (username, auth_provider) "
                   "VALUES (%s, 'device') RETURNING id::text", name)[0][0], name
