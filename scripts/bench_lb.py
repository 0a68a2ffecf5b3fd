#!/usr/bin/python3
"""Bench rows of the leaderboards (scripts/bench): a board of N entries in
PostgreSQL, its rebuild into Redis, and score updates from results.

    bench_lb.py setup BASE PG_PORT REDIS_PORT N TOKEN_PLAYER
        N players and their entries on rating_duel (one of them the player
        whose token the around-me row uses), then the board dropped from
        Redis and timed until it answers again:  lb_rebuild N SECONDS
    bench_lb.py updates BASE PG_PORT REDIS_PORT OUTCOMES
        OUTCOMES duel outcomes (2 players each) on mm:outcomes at once,
        timed until the leaderboards' consumer group took them all:
        lb_updates OUTCOMES ENTRY_WRITES SECONDS
"""

import json
import sys
import time
import uuid

import psycopg2
import redis
import requests


def pg(port):
    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname="game",
                            user="postgres")
    conn.autocommit = True
    return conn


def wait_ok(url, timeout=600):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise SystemExit("bench_lb: %s never answered 200" % url)


def setup(base, pg_port, redis_port, n, me):
    conn = pg(pg_port)
    with conn.cursor() as cur:
        cur.execute("""
            WITH p AS (
                INSERT INTO players (auth_provider)
                SELECT 'device' FROM generate_series(1, %s)
                RETURNING id)
            INSERT INTO leaderboard_entries (leaderboard, season, region,
                                             player_id, score, subscore,
                                             reached_at)
            SELECT 'rating_duel', 'all', '*', id,
                   1000 + (random() * 2000)::int, 0,
                   date_trunc('milliseconds', now())
                   - (random() * 86400000)::bigint * interval '1 ms'
              FROM p""", (n - 1,))
        cur.execute("""
            INSERT INTO leaderboard_entries (leaderboard, season, region,
                                             player_id, score, subscore)
            VALUES ('rating_duel', 'all', '*', %s, 2000, 0)
            ON CONFLICT DO NOTHING""", (me,))
        cur.execute("ANALYZE leaderboard_entries")
    conn.close()

    r = redis.Redis(port=redis_port)
    start = time.monotonic()
    r.hset("lb:meta:rating_duel:all", mapping={"state": "building",
                                               "fence": "0"})
    r.unlink("lb:z:rating_duel:all:*", "lb:h:rating_duel:all:*")
    wait_ok(base + "/leaderboards/rating_duel?limit=1")
    took = time.monotonic() - start
    print("lb_rebuild %d %.2f %d" % (n, took,
                                     r.zcard("lb:z:rating_duel:all:*")))


def updates(base, pg_port, redis_port, count):
    conn = pg(pg_port)
    with conn.cursor() as cur:
        cur.execute("SELECT id::text FROM players WHERE deleted_at IS NULL "
                    "LIMIT %s", (2 * count,))
        ids = [row[0] for row in cur.fetchall()]
    conn.close()

    r = redis.Redis(port=redis_port, decode_responses=True)
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        a, b = ids[(2 * i) % len(ids)], ids[(2 * i + 1) % len(ids)]
        o = {"outcome": "applied", "match_id": str(uuid.uuid4()),
             "mode": "duel", "region": "local", "reason": "time",
             "duration_ms": 60000,
             "players": [{"player_id": a, "team": 0, "result": "win",
                          "flagged": False, "kills": 3, "deaths": 1,
                          "rating_before": 1500, "rating_after": 1516},
                         {"player_id": b, "team": 1, "result": "loss",
                          "flagged": False, "kills": 1, "deaths": 3,
                          "rating_before": 1500, "rating_after": 1484}]}
        pipe.xadd("mm:outcomes", {"match_id": o["match_id"],
                                  "outcome": json.dumps(o)})
    start = time.monotonic()
    pipe.execute()

    def done():
        for g in r.xinfo_groups("mm:outcomes"):
            if g["name"] == "leaderboard":
                return g["pending"] == 0 and g.get("lag") == 0
        return False

    while not done():
        time.sleep(0.01)
    took = time.monotonic() - start
    # a duel outcome in region "local" writes 7 entries: both players on
    # rating_duel, kills and kills' "local" board, the winner on wins
    print("lb_updates %d %d %.2f" % (count, 7 * count, took))


if __name__ == "__main__":
    what, base, pg_port, redis_port, n = sys.argv[1:6]
    if what == "setup":
        setup(base, int(pg_port), int(redis_port), int(n), sys.argv[6])
    else:
        updates(base, int(pg_port), int(redis_port), int(n))
