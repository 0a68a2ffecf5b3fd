"""The leaderboards (ngx_modules/leaderboard) against the real stack:
scores from match outcomes only, once per match, none for flagged or
barred players; deterministic ties; keyset pages that hold while scores
move; around a player at both ends; seasons archived at a UTC boundary;
Redis losing everything and the boards rebuilt from PostgreSQL; erasure;
the admin API.

Boards other tests share (kills, wins, rating_duel) are read relative to
the test's own players, with scores far above what other tests give."""

import base64
import datetime
import json
import random
import threading
import time
import uuid

import pytest
import requests

from auth_helpers import psql
from lb_helpers import (admin, applied, board, clear_clock, drained, fresh,
                        get, ids,
                        new_player, outcome, player, publish, rds, set_clock,
                        wait)
from mm_helpers import device_player, error_code
from tel_helpers import admin as tel_admin


@pytest.fixture
def clock(stack):
    yield stack
    clear_clock(stack)


def entry(page, pid):
    for e in page["entries"]:
        if e["player_id"] == pid:
            return e
    return None


def test_scores_come_from_outcomes_once_and_never_for_cheaters(stack):
    a, _ = new_player(stack)
    b, _ = new_player(stack)
    c, _ = new_player(stack)
    big = 10 ** 9 + random.randrange(10 ** 6)
    o = publish(stack, outcome([
        player(a, "win", kills=big + 5, deaths=1, rating_after=1516.4),
        player(b, "loss", kills=big + 1, deaths=5, rating_after=1483.6),
        player(c, "loss", kills=big + 9, deaths=0, flagged=True,
               rating_after=1700)]))
    applied(stack, o)

    page = fresh(stack, "kills", lambda p: entry(p, a), limit=100)
    assert entry(page, a)["score"] == big + 5
    assert entry(page, a)["subscore"] == -1
    assert entry(page, b)["score"] == big + 1
    assert entry(page, c) is None               # flagged: nothing
    assert ids(page).index(a) < ids(page).index(b)

    # the same outcome again (a redelivery, a second publish): no change
    publish(stack, o)
    time.sleep(1)
    applied(stack, o)
    assert psql(stack, "SELECT score FROM leaderboard_entries WHERE "
                       "leaderboard = 'kills' AND region = '*' AND "
                       "player_id = %s", a) == [(big + 5,)]
    page = fresh(stack, "kills", lambda p: entry(p, a), limit=100)
    assert entry(page, a)["score"] == big + 5

    # the regional board counts the match's region; ratings are "set"
    local = fresh(stack, "kills", lambda p: entry(p, a), region="local",
                  limit=100)
    assert entry(local, a)["score"] == big + 5
    r = rds(stack)
    assert r.hget("lb:h:rating_duel:all:*", a).endswith(a)
    assert psql(stack, "SELECT score FROM leaderboard_entries WHERE "
                       "leaderboard = 'rating_duel' AND player_id = %s",
                a) == [(1516,)]
    assert psql(stack, "SELECT count(*) FROM leaderboard_entries WHERE "
                       "player_id = %s", c) == [(0,)]

    # a second match adds up on incr boards and replaces on set boards
    o2 = publish(stack, outcome([
        player(a, "win", kills=10, deaths=0, rating_after=1530)]))
    applied(stack, o2)
    page = fresh(stack, "kills", lambda p: entry(p, a)
                 and entry(p, a)["score"] == big + 15, limit=100)
    assert entry(page, a)["subscore"] == -1
    assert psql(stack, "SELECT score FROM leaderboard_entries WHERE "
                       "leaderboard = 'rating_duel' AND player_id = %s",
                a) == [(1530,)]
    wins = fresh(stack, "wins", lambda p: entry(p, a)
                 and entry(p, a)["score"] == 2, limit=100)
    assert entry(wins, b) is None       # a loss is no entry of zero


def test_there_is_no_way_for_a_player_to_post_a_score(stack):
    pid, auth = device_player(stack)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = requests.request(method, stack.url("/leaderboards/kills"),
                             headers=auth, json={"score": 10 ** 12},
                             timeout=10)
        assert r.status_code == 405, (method, r.text)
        assert error_code(r) == "method_not_allowed"
    r = requests.post(stack.url("/leaderboards/kills/around/me"),
                      headers=auth, json={"score": 1}, timeout=10)
    assert r.status_code == 405
    # the admin API is not a player's: a player's token is no admin secret
    r = requests.post(stack.url("/admin/leaderboards/kills/recompute"),
                      headers=auth, timeout=10)
    assert r.status_code == 401
    r = requests.post(stack.url("/admin/leaderboards/players/%s/remove"
                                % pid), json={"reason": "x"}, timeout=10)
    assert r.status_code == 401
    assert psql(stack, "SELECT count(*) FROM leaderboard_entries WHERE "
                       "player_id = %s", pid) == [(0,)]


@pytest.mark.parametrize("path, status, code", [
    ("/leaderboards/nope", 404, "unknown_leaderboard"),
    ("/leaderboards/nope/around/%s" % uuid.uuid4(), 404,
     "unknown_leaderboard"),
    ("/leaderboards/kills?limit=0", 422, "invalid_limit"),
    ("/leaderboards/kills?limit=101", 422, "invalid_limit"),
    ("/leaderboards/kills?limit=ten", 422, "invalid_limit"),
    ("/leaderboards/kills?limit=-1", 422, "invalid_limit"),
    ("/leaderboards/kills?cursor=", 422, "invalid_cursor"),
    ("/leaderboards/kills?cursor=!!!", 422, "invalid_cursor"),
    ("/leaderboards/kills?cursor=" + base64.urlsafe_b64encode(
        b"c|2020-w01|*|" + b"0" * 80).decode().rstrip("="), 422,
     "invalid_cursor"),
    ("/leaderboards/kills?cursor=" + base64.urlsafe_b64encode(
        b"hello").decode().rstrip("="), 422, "invalid_cursor"),
    ("/leaderboards/wins?region=local", 422, "invalid_region"),
    ("/leaderboards/kills?region=NOT_A_REGION", 422, "invalid_region"),
    ("/leaderboards/kills?season=../x", 422, "invalid_season"),
    ("/leaderboards/kills?season=1999-w01", 404, "unknown_season"),
    ("/leaderboards/kills/around/not-a-uuid", 404, "no_entry"),
    ("/leaderboards/kills/around/%s" % uuid.uuid4(), 404, "no_entry"),
    ("/player/not-a-uuid/stats", 404, "no_player"),
    ("/player/%s/stats" % uuid.uuid4(), 404, "no_player"),
])
def test_bad_requests_say_why(stack, path, status, code):
    r = get(stack, path)
    assert r.status_code == status, r.text
    assert error_code(r) == code
    assert r.headers["Content-Type"] == "application/json"


def test_a_cursor_belongs_to_its_board_and_region(stack):
    a, _ = new_player(stack)
    b, _ = new_player(stack)
    o = publish(stack, outcome([player(a, kills=7), player(b, kills=3)]))
    applied(stack, o)
    page = fresh(stack, "kills", lambda p: p["next_cursor"], limit=1)
    cur = page["next_cursor"]
    assert board(stack, "kills", limit=1, cursor=cur).status_code == 200
    # another region's or another board's order is not this one's
    r = board(stack, "kills", limit=1, cursor=cur, region="local")
    assert r.status_code == 422 and error_code(r) == "invalid_cursor"
    r = board(stack, "daily_kills", limit=1, cursor=cur)
    assert r.status_code in (200, 422)      # same season id is possible
    # a tampered member
    raw = base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4))
    bad = raw[:-1] + (b"g" if raw[-1:] != b"g" else b"h")
    r = board(stack, "kills", cursor=base64.urlsafe_b64encode(bad)
              .decode().rstrip("="))
    assert r.status_code == 422 and error_code(r) == "invalid_cursor"


def test_ties_go_to_the_earlier_then_to_the_lower_id(clock):
    s = clock
    base = datetime.datetime.now(datetime.timezone.utc)
    players = sorted(new_player(s)[0] for _ in range(3))
    early = players[2]          # the highest id, but first to get there
    score = 2 * 10 ** 9 + random.randrange(10 ** 6)

    set_clock(s, base - datetime.timedelta(minutes=10))
    o = publish(s, outcome([player(early, kills=score)]))
    applied(s, o)
    set_clock(s, base - datetime.timedelta(minutes=5))
    # the same score, the same moment: the lower id first
    o = publish(s, outcome([player(players[1], kills=score),
                            player(players[0], kills=score)]))
    applied(s, o)

    page = fresh(s, "kills", lambda p: all(entry(p, x) for x in players),
                 limit=100)
    mine = [x for x in ids(page) if x in players]
    assert mine == [early, players[0], players[1]]
    ranks = [entry(page, x)["rank"] for x in mine]
    assert ranks == sorted(ranks) and len(set(ranks)) == 3
    assert entry(page, early)["updated_at"] < entry(page, players[0])[
        "updated_at"]


def test_best_compares_the_whole_tuple(stack):
    a, _ = new_player(stack)

    def squad(score, deaths):
        o = publish(stack, outcome([player(a, kills=0, deaths=deaths,
                                           score=score)], mode="squad"))
        applied(stack, o)

    def best():
        return psql(stack, "SELECT score, subscore FROM leaderboard_entries "
                           "WHERE leaderboard = 'best_squad' AND "
                           "player_id = %s", a)

    squad(10, 5)
    assert best() == [(10, -5)]
    squad(10, 2)                # same score, better subscore: better
    assert best() == [(10, -2)]
    squad(9, 0)                 # better subscore, worse score: not better
    assert best() == [(10, -2)]
    squad(10, 3)                # a worse tuple: not better
    assert best() == [(10, -2)]
    squad(11, 9)
    assert best() == [(11, -9)]
    page = fresh(stack, "best_squad", lambda p: entry(p, a)
                 and entry(p, a)["score"] == 11, limit=100)
    assert entry(page, a)["subscore"] == -9


def paging_players(s, n):
    """n players on the "paging" board straight in PostgreSQL (the source
    of truth), many tied, then the board dropped from Redis for a rebuild
    (as a recompute does)."""
    drained(s)
    psql(s, "DELETE FROM leaderboard_entries WHERE leaderboard = 'paging'")
    rows = psql(s, """
        WITH p AS (
            INSERT INTO players (username, auth_provider)
            SELECT 'pg_' || substr(md5(random()::text), 1, 16), 'device'
              FROM generate_series(1, %s)
            RETURNING id)
        INSERT INTO leaderboard_entries (leaderboard, season, region,
                                         player_id, score, subscore,
                                         reached_at)
        SELECT 'paging', 'all', '*', id, (random() * 50)::int, 0,
               date_trunc('milliseconds', now())
               - (random() * 1000)::int * interval '1 ms'
          FROM p
        RETURNING player_id::text, score""", n)
    r = rds(s)
    r.hset("lb:meta:paging:all", mapping={"state": "building", "fence": "0"})
    r.unlink("lb:z:paging:all:*", "lb:h:paging:all:*")
    return rows


def truth(s, name, season="all", region="*"):
    """The board's order as PostgreSQL has it (desc boards)."""
    return [r[0] for r in psql(
        s, "SELECT player_id::text FROM leaderboard_entries WHERE "
           "leaderboard = %s AND season = %s AND region = %s ORDER BY "
           "score DESC, subscore DESC, reached_at, player_id",
        name, season, region)]


def test_ten_thousand_players_page_by_keyset_while_scores_move(stack):
    rows = paging_players(stack, 10000)
    everyone = truth(stack, "paging")
    page = wait(lambda: (lambda r: r.json() if r.status_code == 200
                         else None)(board(stack, "paging", limit=100)))
    assert ids(page) == everyone[:100]

    # scores move while a client pages: some players of later pages get
    # matches (a trusted source: outcomes of mode "paging")
    movers = set(random.sample([p for p, _ in rows], 300))
    stop = threading.Event()

    def move():
        for p in movers:
            if stop.is_set():
                return
            publish(stack, outcome([player(p, kills=1)], mode="paging"))

    t = threading.Thread(target=move)
    t.start()
    seen, ranks, cursor, pages = [], [], None, 0
    try:
        while True:
            params = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            r = board(stack, "paging", **params)
            assert r.status_code == 200, r.text
            body = r.json()
            seen += ids(body)
            ranks += [e["rank"] for e in body["entries"]]
            pages += 1
            cursor = body["next_cursor"]
            if not cursor:
                break
    finally:
        stop.set()
        t.join()

    assert pages >= 100
    # every player whose score did not move is seen exactly once, in the
    # board's order; ranks only go up
    still = [p for p in seen if p not in movers]
    assert sorted(still) == sorted(set(everyone) - movers)
    assert still == [p for p in everyone if p not in movers]
    assert all(x < y for x, y in zip(ranks, ranks[1:]))


def test_around_a_player_at_rank_1_2_and_last(stack):
    paging_players(stack, 500)
    everyone = truth(stack, "paging")
    wait(lambda: board(stack, "paging").status_code == 200)

    def around(pid, limit=5):
        r = get(stack, "/leaderboards/paging/around/%s" % pid,
                params={"limit": limit})
        assert r.status_code == 200, r.text
        return r.json()

    first = around(everyone[0])
    assert [e["rank"] for e in first["entries"]] == [1, 2, 3, 4, 5]
    assert ids(first) == everyone[:5]
    second = around(everyone[1])
    assert [e["rank"] for e in second["entries"]] == [1, 2, 3, 4, 5]
    middle = around(everyone[250])
    assert [e["rank"] for e in middle["entries"]] == [249, 250, 251, 252, 253]
    assert ids(middle)[2] == everyone[250]
    last = around(everyone[-1])
    assert [e["rank"] for e in last["entries"]] == [496, 497, 498, 499, 500]
    assert ids(last)[-1] == everyone[-1]
    one = around(everyone[-2], limit=1)
    assert ids(one) == [everyone[-2]] and one["entries"][0]["rank"] == 499
    # upper case ids are the same player
    assert around(everyone[0].upper())["entries"][0]["rank"] == 1

    r = get(stack, "/leaderboards/paging/around/%s" % uuid.uuid4())
    assert r.status_code == 404 and error_code(r) == "no_entry"
    r = get(stack, "/leaderboards/paging/around/me")
    assert r.status_code == 401
    _, auth = device_player(stack)
    r = get(stack, "/leaderboards/paging/around/me", headers=auth)
    assert r.status_code == 404 and error_code(r) == "no_entry"
    r = get(stack, "/leaderboards/paging/around/%s?limit=0" % everyone[0])
    assert r.status_code == 422


def test_around_me_is_the_signed_in_player(stack):
    pid, auth = device_player(stack)
    o = publish(stack, outcome([player(pid, kills=3 * 10 ** 9)]))
    applied(stack, o)
    r = wait(lambda: (lambda r: r if r.status_code == 200 else None)(
        get(stack, "/leaderboards/kills/around/me", headers=auth)))
    body = r.json()
    assert body["player_id"] == pid
    assert entry(body, pid)["score"] == 3 * 10 ** 9


def test_redis_loses_everything_and_the_boards_come_back(ready_stack):
    """FLUSHALL: every answer until the rebuild ends is 503 or right;
    outcomes applied meanwhile are kept."""
    s = ready_stack
    paging_players(s, 3000)
    wait(lambda: board(s, "paging").status_code == 200)
    before = truth(s, "paging")
    a, _ = new_player(s)
    o = publish(s, outcome([player(a, kills=4 * 10 ** 9)]))
    applied(s, o)

    rds(s).flushall()
    statuses = set()

    def settled():
        # a limit no other test reads: no page of theirs in the cache
        r = board(s, "paging", limit=99)
        statuses.add(r.status_code)
        if r.status_code == 503:
            assert error_code(r) in ("rebuilding", "unavailable")
            assert "Retry-After" in r.headers
            return None
        assert r.status_code == 200, r.text
        assert ids(r.json()) == before[:99]     # never wrong, only late
        return r.json()

    wait(settled, timeout=60)
    assert statuses <= {200, 503}
    # an outcome while the boards are back: applied as usual
    o2 = publish(s, outcome([player(a, kills=1)]))
    applied(s, o2)
    page = fresh(s, "kills", lambda p: entry(p, a)
                 and entry(p, a)["score"] == 4 * 10 ** 9 + 1, limit=100)
    assert entry(page, a)["rank"] >= 1
    # the whole board, page by page, is PostgreSQL's
    seen, cursor = [], None
    while True:
        params = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        body = board(s, "paging", **params).json()
        seen += ids(body)
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == before


def test_redis_restarts_without_its_data(ready_stack):
    s = ready_stack
    a, _ = new_player(s)
    o = publish(s, outcome([player(a, kills=5 * 10 ** 9)]))
    applied(s, o)
    s.run("stop", "redis")
    r = board(s, "kills")
    assert r.status_code == 503
    s.run("start", "redis")
    s.wait_ready()
    page = fresh(s, "kills", lambda p: entry(p, a), limit=5)
    assert entry(page, a)["score"] == 5 * 10 ** 9


def test_a_season_ends_at_the_utc_boundary_and_stays_readable(clock):
    s = clock
    day = datetime.datetime(2031, 3, 14, tzinfo=datetime.timezone.utc)
    a, name = new_player(s)
    b, _ = new_player(s)

    set_clock(s, day + datetime.timedelta(hours=23, minutes=59, seconds=30))
    wait(lambda: board(s, "daily_kills").json().get("season")
         == "2031-03-14")
    o = publish(s, outcome([player(a, kills=7), player(b, kills=2)]))
    applied(s, o)
    page = fresh(s, "daily_kills", lambda p: entry(p, a))
    assert page["season"] == "2031-03-14"
    assert [e["rank"] for e in page["entries"]][:2] == [1, 2]

    # a second past midnight, UTC: a new season, empty; the old one is
    # archived once, with its ranks
    set_clock(s, day + datetime.timedelta(days=1, seconds=1))
    page = fresh(s, "daily_kills", lambda p: p["season"] == "2031-03-15")
    assert entry(page, a) is None
    wait(lambda: psql(s, "SELECT archived_at IS NOT NULL FROM "
                         "leaderboard_seasons WHERE leaderboard = "
                         "'daily_kills' AND season = '2031-03-14'")
         == [(True,)])
    # every worker learns the new season within a tick
    prev = wait(lambda: all(board(s, "daily_kills", season="previous")
                            .json()["season"] == "2031-03-14"
                            for _ in range(8))
                and board(s, "daily_kills", season="previous").json())
    assert prev["season"] == "2031-03-14"
    assert [(e["player_id"], e["rank"], e["score"], e["username"])
            for e in prev["entries"]] == [(a, 1, 7, name), (b, 2, 2, prev[
                "entries"][1]["username"])]
    assert board(s, "daily_kills", season="2031-03-14").json()[
        "entries"] == prev["entries"]
    one = board(s, "daily_kills", season="previous", limit=1).json()
    assert ids(one) == [a] and one["next_cursor"]
    two = board(s, "daily_kills", season="2031-03-14", limit=1,
                cursor=one["next_cursor"]).json()
    assert ids(two) == [b] and two["next_cursor"] is None
    r = get(s, "/leaderboards/daily_kills/around/%s" % b,
            params={"season": "previous", "limit": 3})
    assert [e["rank"] for e in r.json()["entries"]] == [1, 2]
    r = get(s, "/leaderboards/daily_kills/around/%s" % uuid.uuid4(),
            params={"season": "previous"})
    assert r.status_code == 404
    # the archived season's keys left Redis; PostgreSQL archived it once
    wait(lambda: not rds(s).exists("lb:z:daily_kills:2031-03-14:*"))
    assert psql(s, "SELECT count(*) FROM leaderboard_archive WHERE "
                   "leaderboard = 'daily_kills' AND season = "
                   "'2031-03-14'") == [(2,)]
    # the new season takes new matches
    o = publish(s, outcome([player(b, kills=1)]))
    applied(s, o)
    page = fresh(s, "daily_kills", lambda p: entry(p, b))
    assert page["season"] == "2031-03-15" and entry(page, b)["rank"] >= 1


def test_an_erased_player_leaves_every_board(stack):
    pid, auth = device_player(stack)
    o = publish(stack, outcome([player(pid, kills=6 * 10 ** 9)]))
    applied(stack, o)
    fresh(stack, "kills", lambda p: entry(p, pid), limit=3)
    assert get(stack, "/player/%s/stats" % pid).status_code == 200

    r = requests.delete(stack.url("/player/me"), headers=auth, timeout=10)
    assert r.status_code in (200, 204), r.text
    fresh(stack, "kills", lambda p: not entry(p, pid), limit=3)
    assert psql(stack, "SELECT count(*) FROM leaderboard_entries WHERE "
                       "player_id = %s", pid) == [(0,)]
    wait(lambda: get(stack, "/leaderboards/kills/around/%s" % pid)
         .status_code == 404)
    assert get(stack, "/player/%s/stats" % pid).status_code == 404
    # Redis dropped it (the outbox), and keeps a tombstone
    wait(lambda: rds(stack).hget("lb:h:kills:%s:*" % board(
        stack, "kills").json()["season"], pid).endswith(" -"))
    wait(lambda: psql(stack, "SELECT count(*) FROM leaderboard_outbox "
                             "WHERE player_id = %s", pid) == [(0,)])


def test_an_admin_removes_a_cheater_for_good(stack):
    a, _ = new_player(stack)
    o = publish(stack, outcome([player(a, kills=7 * 10 ** 9)]))
    applied(stack, o)
    fresh(stack, "kills", lambda p: entry(p, a), limit=3)

    url = stack.url("/admin/leaderboards/players/%s/remove" % a)
    assert requests.post(url, json={"reason": "aimbot"},
                         timeout=10).status_code == 401
    assert requests.post(url, json={"reason": "aimbot"}, timeout=10,
                         headers={"Authorization": "Bearer " + "x" * 64}
                         ).status_code == 401
    r = requests.post(url, json={}, headers=admin(stack), timeout=10)
    assert r.status_code == 422
    r = requests.get(url, headers=admin(stack), timeout=10)
    assert r.status_code == 405
    r = requests.post(stack.url("/admin/leaderboards/players/%s/remove"
                                % uuid.uuid4()), json={"reason": "x"},
                      headers=admin(stack), timeout=10)
    assert r.status_code == 404

    r = requests.post(url, json={"reason": "aimbot"}, headers=admin(stack),
                      timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["player_id"] == a and r.json()["removed"] >= 5
    # gone from Redis before the answer (around is never cached)
    assert get(stack, "/leaderboards/kills/around/%s" % a).status_code == 404
    fresh(stack, "kills", lambda p: not entry(p, a), limit=3)
    assert psql(stack, "SELECT actor, reason FROM leaderboard_barred WHERE "
                       "player_id = %s", a) == [("ops", "aimbot")]
    # and takes nothing from later matches
    o = publish(stack, outcome([player(a, kills=5)]))
    applied(stack, o)
    assert psql(stack, "SELECT count(*) FROM leaderboard_entries WHERE "
                       "player_id = %s", a) == [(0,)]


def real_match(s, mode, region, kills, winner=None):
    """A match the way the matchmaker records it (sql/004, 006): a session
    and a server result, so that the match history has it.  Returns its
    outcome, which the test publishes as the matchmaker would."""
    match = str(uuid.uuid4())
    players = list(kills)
    session = {"mode": mode, "region": region, "server_id": "srv-lb",
               "server_host": "127.0.0.1", "server_port": 7777,
               "players": [{"player_id": p, "team": i}
                           for i, p in enumerate(players)]}
    result = {"match_id": match, "server_id": "srv-lb", "reason": "time",
              "winner": winner, "duration_ms": 1000,
              "started_at_ms": int(time.time() * 1000) - 1000,
              "players": [{"id": p, "kills": kills[p], "deaths": 0,
                           "shots": 0, "hits": 0, "violations": {},
                           "flagged": False, "connected": True}
                          for p in players]}
    got = psql(s, "SELECT mm_result_apply(%s, 'srv-lb', %s::jsonb, "
                  "%s::jsonb)", match, json.dumps(result),
               json.dumps(session))[0][0]
    return got


def test_an_admin_recomputes_a_board_from_the_match_history(stack):
    a, _ = new_player(stack)
    b, _ = new_player(stack)
    for k in ({a: 4, b: 1}, {a: 2, b: 9}):
        o = real_match(stack, "recount", "local", k)
        assert o["outcome"] == "applied", o
        applied(stack, publish(stack, o))
    page = fresh(stack, "recount", lambda p: entry(p, a) and entry(p, b))
    assert (entry(page, b)["score"], entry(page, a)["score"]) == (10, 6)

    # the board went wrong (a bug, a hand edit): recompute it
    psql(stack, "UPDATE leaderboard_entries SET score = 999 WHERE "
                "leaderboard = 'recount' AND player_id = %s", a)
    url = stack.url("/admin/leaderboards/recount/recompute")
    assert requests.post(url, timeout=10).status_code == 401
    assert requests.get(url, headers=admin(stack),
                        timeout=10).status_code == 405
    r = requests.post(stack.url("/admin/leaderboards/nope/recompute"),
                      headers=admin(stack), timeout=10)
    assert r.status_code == 404
    r = requests.post(url, headers=admin(stack), timeout=10)
    assert r.status_code == 202, r.text
    assert r.json()["season"] == "all" and r.json()["rebuilding"] is True

    page = fresh(stack, "recount", lambda p: entry(p, a)
                 and entry(p, a)["score"] == 6)
    assert entry(page, b)["score"] == 10 and ids(page)[:2] == [b, a]
    local = fresh(stack, "recount", lambda p: entry(p, a), region="local")
    assert entry(local, a)["score"] == 6
    # a match that ended before the recompute, whose outcome comes after
    # it: counted once, by the recompute
    o = real_match(stack, "recount", "local", {a: 3})
    r = requests.post(url, headers=admin(stack), timeout=10)
    assert r.status_code == 202
    fresh(stack, "recount", lambda p: entry(p, a)
          and entry(p, a)["score"] == 9)
    applied(stack, publish(stack, o))
    assert psql(stack, "SELECT score FROM leaderboard_entries WHERE "
                       "leaderboard = 'recount' AND region = '*' AND "
                       "player_id = %s", a) == [(9,)]


def test_a_recompute_leaves_out_players_under_review(stack):
    """game_lb_exclude_flagged (on in test.conf) holds for a recompute as
    it does for outcomes: the match history gives a player under
    anti-cheat review nothing back, and once an admin cleared them the
    next recompute counts their matches again."""
    a, _ = new_player(stack)
    b, _ = new_player(stack)
    o = real_match(stack, "recount", "local", {a: 5, b: 7})
    applied(stack, publish(stack, o))
    fresh(stack, "recount", lambda p: entry(p, a) and entry(p, b))

    psql(stack, "INSERT INTO tel_suspicion (player_id, score, flagged_at) "
                "VALUES (%s, 500, now())", b)
    url = stack.url("/admin/leaderboards/recount/recompute")
    r = requests.post(url, headers=admin(stack), timeout=10)
    assert r.status_code == 202, r.text
    page = fresh(stack, "recount", lambda p: entry(p, a)
                 and entry(p, b) is None)
    assert entry(page, a)["score"] == 5
    assert psql(stack, "SELECT count(*) FROM leaderboard_entries WHERE "
                       "leaderboard = 'recount' AND player_id = %s",
                b) == [(0,)]

    # a false positive: the review clears it, a recompute restores it
    r = requests.post(stack.url("/admin/telemetry/players/%s/review" % b),
                      headers=tel_admin(stack), json={"decision": "clear"},
                      timeout=10)
    assert r.status_code == 200, r.text
    r = requests.post(url, headers=admin(stack), timeout=10)
    assert r.status_code == 202, r.text
    page = fresh(stack, "recount", lambda p: entry(p, b))
    assert (entry(page, a)["score"], entry(page, b)["score"]) == (5, 7)


def test_player_stats_per_mode_with_ranks(stack):
    a, name = new_player(stack)
    o = real_match(stack, "duel", "local", {a: 8}, winner=a)
    applied(stack, publish(stack, o))
    # the economy counts the stats from the same outcomes
    wait(lambda: psql(stack, "SELECT matches FROM player_stats WHERE "
                             "player_id = %s", a) == [(1,)])
    wait(lambda: get(stack, "/player/%s/stats" % a).json()["leaderboards"]
         ["kills"]["rank"])
    r = get(stack, "/player/%s/stats" % a)
    assert r.status_code == 200
    body = r.json()
    assert body["player_id"] == a and body["username"] == name
    duel = body["modes"]["duel"]
    assert (duel["matches"], duel["kills"], duel["playtime_ms"]) == \
        (1, 8, 1000)
    assert duel["rating"] is not None
    kills = body["leaderboards"]["kills"]
    assert kills["score"] == 8 and kills["rank"] >= 1
    assert body["leaderboards"]["best_squad"]["rank"] is None
    around = get(stack, "/leaderboards/kills/around/%s" % a,
                 params={"limit": 1}).json()
    assert around["entries"][0]["rank"] == kills["rank"]


def page_scripts(s):
    """How many times Redis ran the page script: it alone calls ZCARD
    (besides matchmaking's join, which these tests do not use)."""
    return rds(s).info("commandstats").get("cmdstat_zcard",
                                           {}).get("calls", 0)


def test_first_pages_come_from_shared_memory_not_redis(stack):
    a, _ = new_player(stack)
    b, _ = new_player(stack)
    o = publish(stack, outcome([player(a, kills=8 * 10 ** 9),
                                player(b, kills=1)]))
    applied(stack, o)
    page = fresh(stack, "kills", lambda p: entry(p, a), limit=7)
    second = fresh(stack, "kills", lambda p: p["next_cursor"], limit=1)

    # 300 reads of one first page: Redis runs the page about once per
    # ttl (1 s), whichever worker answers
    before = page_scripts(stack)
    session = requests.Session()
    for _ in range(300):
        r = session.get(stack.url("/leaderboards/kills"),
                        params={"limit": 7}, timeout=10)
        assert r.status_code == 200
        assert r.json()["entries"][0]["player_id"] == a
    cached = page_scripts(stack) - before
    assert cached <= 30, cached

    # pages after a cursor are read from Redis each time
    before = page_scripts(stack)
    for _ in range(50):
        r = session.get(stack.url("/leaderboards/kills"),
                        params={"limit": 1,
                                "cursor": second["next_cursor"]},
                        timeout=10)
        assert r.status_code == 200
    assert page_scripts(stack) - before >= 50
    # another limit is another page
    assert len(board(stack, "kills", limit=2).json()["entries"]) == 2
