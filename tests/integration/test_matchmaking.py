"""Matchmaking endpoints: join, status, cancel, behind the auth guard.

Players are real accounts (device sign-in through the auth module); queues,
tickets and ratings live in the stack's real Redis and PostgreSQL.
"""

import os
import subprocess
import time
import uuid

import redis
import requests

from auth_helpers import psql
from mm_helpers import (ALLOCATE, BOT_BIN, SERVER_BIN, FakeServer, cancel,
                        device_player, error_code, join, party_create,
                        party_join, status, wait_status)


def test_join_then_status_then_cancel(stack):
    pid, auth = device_player(stack)

    r = join(stack, auth)
    assert r.status_code == 202, r.text
    ticket = r.json()
    assert ticket["status"] == "queued"
    assert ticket["game_mode"] == "duel" and ticket["region"] == "local"
    uuid.UUID(ticket["ticket_id"])

    r = status(stack, auth)
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["ticket_id"] == ticket["ticket_id"]
    assert st["status"] == "queued"
    assert st["game_mode"] == "duel" and st["region"] == "local"
    assert 0 <= st["queued_for_ms"] < 60000

    r = cancel(stack, auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"ticket_id": ticket["ticket_id"], "status": "cancelled"}
    assert status(stack, auth).json()["status"] == "cancelled"

    r = cancel(stack, auth)
    assert r.status_code == 404 and error_code(r) == "no_ticket"

    # a cancelled ticket does not block a new one
    assert join(stack, auth).status_code == 202


def test_one_active_ticket_per_player(stack):
    _, auth = device_player(stack)
    assert join(stack, auth).status_code == 202
    r = join(stack, auth, mode="squad")
    assert r.status_code == 409 and error_code(r) == "ticket_exists"


def test_rating_comes_from_the_database(stack):
    pid, auth = device_player(stack)
    psql(stack, "INSERT INTO player_ratings (player_id, mode, rating) "
                "VALUES (%s, 'duel', 1873.5)", pid)
    ticket = join(stack, auth).json()["ticket_id"]
    r = redis.Redis(port=stack.redis_port, decode_responses=True)
    assert float(r.hget("mm:ticket:" + ticket, "rating")) == 1873.5

    _, newcomer = device_player(stack)
    ticket = join(stack, newcomer).json()["ticket_id"]
    assert float(r.hget("mm:ticket:" + ticket, "rating")) == 1500.0


def test_bad_requests_are_refused_with_the_reason(stack):
    _, auth = device_player(stack)

    r = join(stack, auth, mode="chess")
    assert r.status_code == 422 and error_code(r) == "unknown_mode"

    r = requests.post(stack.url("/matchmaking/join"), headers=auth, timeout=10,
                      json={"game_mode": 7, "regions": []})
    assert r.status_code == 422 and error_code(r) == "invalid_field"

    for regions in ([], "local", [{"region": "local"}],
                    [{"region": "local", "latency_ms": -1}],
                    [{"region": "mars", "latency_ms": 5}]):
        r = join(stack, auth, regions=regions)
        assert r.status_code == 422, (regions, r.text)
        assert error_code(r) == "no_region"

    r = join(stack, auth, party_id="p1")
    assert r.status_code == 422

    r = requests.post(stack.url("/matchmaking/join"), headers=auth,
                      data="{", timeout=10)
    assert r.status_code == 415

    r = requests.put(stack.url("/matchmaking/join"), headers=auth, timeout=10)
    assert r.status_code == 405

    # nothing was queued by any of these
    assert status(stack, auth).status_code == 404


def test_the_region_is_the_closest_served_one_within_max_latency(stack):
    _, auth = device_player(stack)
    # "tiny" serves local and far, at most 50 ms
    r = join(stack, auth, mode="tiny",
             regions=[{"region": "local", "latency_ms": 40},
                      {"region": "far", "latency_ms": 20},
                      {"region": "mars", "latency_ms": 1}])
    assert r.status_code == 202, r.text
    assert r.json()["region"] == "far"
    cancel(stack, auth)

    r = join(stack, auth, mode="tiny",
             regions=[{"region": "local", "latency_ms": 51}])
    assert r.status_code == 422 and error_code(r) == "no_region"


def test_a_full_queue_answers_503(stack):
    rds = redis.Redis(port=stack.redis_port)
    rds.delete("mm:queue:tiny:local")
    players = [device_player(stack)[1] for _ in range(3)]
    assert join(stack, players[0], mode="tiny").status_code == 202
    assert join(stack, players[1], mode="tiny").status_code == 202
    r = join(stack, players[2], mode="tiny")
    assert r.status_code == 503 and error_code(r) == "queue_full"
    assert r.headers["Retry-After"] == "1"
    rds.delete("mm:queue:tiny:local")


def test_the_guard_is_required(stack):
    r = requests.post(stack.url("/matchmaking/join"), timeout=10,
                      json={"game_mode": "duel",
                            "regions": [{"region": "local", "latency_ms": 1}]})
    assert r.status_code == 401
    assert requests.get(stack.url("/matchmaking/status"),
                        timeout=10).status_code == 401


def test_scripts_come_back_after_redis_forgets_them(stack):
    _, auth = device_player(stack)
    redis.Redis(port=stack.redis_port).script_flush()
    assert join(stack, auth).status_code == 202
    assert status(stack, auth).json()["status"] == "queued"


def test_redis_down_is_a_503_and_recovers(ready_stack):
    s = ready_stack
    _, auth = device_player(s)
    s.run("stop", "redis")
    try:
        r = join(s, auth)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert status(s, auth).status_code == 503
    finally:
        s.run("start", "redis")
    s.wait_ready()
    assert join(s, auth).status_code == 202


# -- the matcher: queues -> engine -> allocator -> claimed tickets ---------

def test_two_players_are_matched_onto_a_ready_server(stack):
    server = FakeServer(stack, 41001, mode="pair1")
    try:
        a_id, a = device_player(stack)
        b_id, b = device_player(stack)
        assert join(stack, a, mode="pair1").status_code == 202
        assert join(stack, b, mode="pair1").status_code == 202

        sa = wait_status(stack, a, "matched")
        sb = wait_status(stack, b, "matched")
        assert sa["match_id"] == sb["match_id"]
        assert {sa["team"], sb["team"]} == {0, 1}
        # the assignment follows the claim within the same pass
        end = time.monotonic() + 5
        while "server" not in sa and time.monotonic() < end:
            time.sleep(0.1)
            sa = status(stack, a).json()
        assert sa["server"] == {"host": "127.0.0.1", "port": 41001}

        # the allocator handed that server to this match, and only to it
        out = subprocess.run([ALLOCATE, "--redis",
                              "127.0.0.1:%d" % stack.redis_port, "list"],
                             check=True, capture_output=True, text=True).stdout
        mine = [l for l in out.splitlines() if server.id in l]
        assert mine and '"Allocated"' in mine[0] and sa["match_id"] in mine[0]

        # a matched ticket cannot be cancelled, nor a second one opened
        assert cancel(stack, a).status_code == 409
        assert join(stack, a).status_code == 409
    finally:
        server.stop()


def test_without_a_ready_server_tickets_wait_then_match(stack):

    c_id, c = device_player(stack)
    d_id, d = device_player(stack)
    assert join(stack, c, mode="pair2").status_code == 202
    assert join(stack, d, mode="pair2").status_code == 202
    time.sleep(2.5)
    # no pair2 server is Ready: still queued, not failed, not lost
    assert status(stack, c).json()["status"] == "queued"
    assert status(stack, d).json()["status"] == "queued"

    server = FakeServer(stack, 41002, mode="pair2")
    try:
        sc = wait_status(stack, c, "matched")
        sd = wait_status(stack, d, "matched")
        assert sc["match_id"] == sd["match_id"]
    finally:
        server.stop()


def test_matching_goes_on_when_the_lease_holder_dies(stack):
    """kill -9 the worker that holds the queue's lease: its lease lapses
    (three ticks), another worker takes over with a newer fencing token."""
    import signal

    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    _, a = device_player(stack)
    assert join(stack, a, mode="pair3").status_code == 202

    end = time.monotonic() + 5
    while not rds.hget("mm:lease:pair3:local", "holder"):
        assert time.monotonic() < end, "nobody took the lease"
        time.sleep(0.1)
    holder = rds.hget("mm:lease:pair3:local", "holder")
    fence = int(rds.hget("mm:lease:pair3:local", "fence"))
    # "hostname:pid:random": unique even across containers
    pid = int(holder.rsplit(":", 2)[1])

    stack.killed_workers.append(pid)
    os.kill(pid, signal.SIGKILL)

    server = FakeServer(stack, 41003, mode="pair3")
    try:
        _, b = device_player(stack)
        assert join(stack, b, mode="pair3").status_code == 202
        sa = wait_status(stack, a, "matched", timeout=15)
        sb = wait_status(stack, b, "matched", timeout=5)
        assert sa["match_id"] == sb["match_id"]
        new_holder = rds.hget("mm:lease:pair3:local", "holder")
        assert new_holder != holder
        assert int(rds.hget("mm:lease:pair3:local", "fence")) > fence
    finally:
        server.stop()


# -- the whole loop: join -> matched -> connect to a real game server -----

def test_matched_players_connect_to_their_server_and_play(stack, tmp_path):
    """A real game-server in Ready takes the match; each player's status
    holds a connection ticket the server accepts, signed by nginx with the
    key whose public half the server was given; the match plays out and
    the server publishes its result."""
    import json

    import jwt as pyjwt

    priv = os.path.join(stack.var, "keys", "jwt-1.pem")
    pub = str(tmp_path / "jwt-1.pub.pem")
    subprocess.run(["openssl", "ec", "-in", priv, "-pubout", "-out", pub],
                   check=True, capture_output=True)

    sid = "mm-e2e-" + uuid.uuid4().hex[:6]
    server = subprocess.Popen(
        [SERVER_BIN, "--id", sid, "--port", "21990", "--redis",
         "127.0.0.1:%d" % stack.redis_port, "--mode", "pair4",
         "--ticket-key", "1=" + pub, "--match-seconds", "3",
         "--max-matches", "1", "--join-timeout", "10"],
        stdout=open(tmp_path / "server.out", "w"),
        stderr=open(tmp_path / "server.err", "w"))
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    try:
        end = time.monotonic() + 5
        while rds.hget("game:server:" + sid, "state") != "Ready":
            assert time.monotonic() < end, "the game server never got Ready"
            time.sleep(0.1)

        players = [device_player(stack) for _ in range(2)]
        for _, auth in players:
            assert join(stack, auth, mode="pair4").status_code == 202

        statuses = []
        for pid, auth in players:
            st = wait_status(stack, auth, "matched")
            end = time.monotonic() + 5
            while "connection_ticket" not in st:
                assert time.monotonic() < end, st
                time.sleep(0.1)
                st = status(stack, auth).json()
            statuses.append((pid, st))

        match_id = statuses[0][1]["match_id"]
        with open(pub) as f:
            public_key = f.read()
        for pid, st in statuses:
            assert st["server"] == {"host": "127.0.0.1", "port": 21990}
            # an independent implementation accepts the ticket
            claims = pyjwt.decode(st["connection_ticket"], public_key,
                                  algorithms=["ES256"])
            assert claims["sub"] == pid
            assert claims["match_id"] == match_id
            assert claims["server_id"] == sid
            assert pyjwt.get_unverified_header(st["connection_ticket"])["kid"] == "1"

        bots = [subprocess.Popen([BOT_BIN, "--server", "127.0.0.1:21990",
                                  "--ticket", st["connection_ticket"],
                                  "--duration", "8"],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
                for _, st in statuses]
        for b in bots:
            out, _ = b.communicate(timeout=30)
            summary = json.loads(out.strip().splitlines()[-1])
            assert b.returncode == 0, summary
            assert summary["bots"][0]["snapshots"] > 0

        end = time.monotonic() + 10
        results = []
        while not results:
            assert time.monotonic() < end, "no result published"
            results = [json.loads(f["result"])
                       for _, f in rds.xrange("game:results")
                       if json.loads(f["result"])["match_id"] == match_id]
            time.sleep(0.2)
        assert {p["id"] for p in results[0]["players"]} == \
            {pid for pid, _ in statuses}

        # the result consumer applies it in PostgreSQL: session closed,
        # ratings moved by Elo (experience is the economy's: test_economy)
        def session():
            return psql(stack, "SELECT status, server_id FROM game_sessions "
                               "WHERE id = %s", match_id)

        end = time.monotonic() + 10
        while not session() or session()[0][0] in ("allocated", "playing"):
            assert time.monotonic() < end, session()
            time.sleep(0.2)
        assert session() == [("finished", sid)]

        # experience comes from the economy, which reads the outcome after
        # the session closed: wait for it, or "rows" races it
        end = time.monotonic() + 10
        while psql(stack, "SELECT count(*) FROM econ_match_rewards WHERE "
                          "match_id = %s", match_id)[0][0] < len(statuses):
            assert time.monotonic() < end
            time.sleep(0.2)

        rows = psql(stack, "SELECT gp.player_id::text, gp.result, "
                           "gp.rating_before, gp.rating_after, 0, "
                           "r.games_played FROM game_session_players gp "
                           "JOIN players p ON p.id = gp.player_id "
                           "JOIN player_ratings r ON r.player_id = "
                           "gp.player_id AND r.mode = 'pair4' "
                           "WHERE gp.session_id = %s", match_id)
        assert {r[0] for r in rows} == {pid for pid, _ in statuses}
        by = {r[1]: r for r in rows}
        winner = results[0]["winner"]
        if winner:
            assert set(by) == {"win", "loss"}
            assert by["win"][0] == winner
            # equal ratings: the winner gains K/2, the loser loses as much
            assert abs(by["win"][3] - 1516.0) < 1e-6, rows
            assert abs(by["loss"][3] - 1484.0) < 1e-6, rows
        else:
            assert set(by) == {"draw"}
            assert all(abs(r[3] - 1500.0) < 1e-6 for r in rows)
        assert all(r[2] == 1500.0 and r[5] == 1 for r in rows)

        # the same result again changes nothing (idempotent per match)
        entry = [f for _, f in rds.xrange("game:results")
                 if json.loads(f["result"])["match_id"] == match_id][0]
        rds.xadd("game:results", entry)
        time.sleep(2.5)
        again = psql(stack, "SELECT gp.player_id::text, gp.result, "
                            "gp.rating_before, gp.rating_after, 0, "
                            "r.games_played FROM game_session_players gp "
                            "JOIN players p ON p.id = gp.player_id "
                            "JOIN player_ratings r ON r.player_id = "
                            "gp.player_id AND r.mode = 'pair4' "
                            "WHERE gp.session_id = %s", match_id)
        assert sorted(again) == sorted(rows)
        pending = rds.xpending("game:results", "nginx")
        assert pending["pending"] == 0

        # the match is over: the players' tickets ended, they queue again
        for pid, auth in players:
            assert wait_status(stack, auth, "finished")["match_id"] == match_id
            assert join(stack, auth, mode="pair4").status_code == 202
            assert cancel(stack, auth).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_status_long_poll_answers_when_the_ticket_changes(stack):
    import threading

    _, auth = device_player(stack)
    assert join(stack, auth, mode="squad").status_code == 202

    # nothing changes: the answer comes when the wait is over
    t0 = time.monotonic()
    r = requests.get(stack.url("/matchmaking/status"), params={"wait": 1},
                     headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assert time.monotonic() - t0 >= 0.9

    # a change ends the wait early
    out = {}

    def poll():
        t = time.monotonic()
        out["r"] = requests.get(stack.url("/matchmaking/status"),
                                params={"wait": 20}, headers=auth, timeout=30)
        out["took"] = time.monotonic() - t

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.7)
    assert cancel(stack, auth).status_code == 200
    th.join()
    assert out["r"].status_code == 200
    assert out["r"].json()["status"] == "cancelled"
    assert out["took"] < 10, "the long poll did not notice the change"

    for bad in ("abc", "-1", "31"):
        r = requests.get(stack.url("/matchmaking/status"),
                         params={"wait": bad}, headers=auth, timeout=10)
        assert r.status_code == 400 and error_code(r) == "invalid_wait"


# -- parties -----------------------------------------------------------------

def test_party_membership_rules(stack):
    leader_id, leader = device_player(stack)
    friend_id, friend = device_player(stack)
    _, stranger = device_player(stack)

    r = party_create(stack, leader)
    assert r.status_code == 201, r.text
    party = r.json()["party_id"]
    assert r.json() == {"party_id": party, "leader": leader_id,
                        "members": [leader_id]}

    r = party_join(stack, friend, party)
    assert r.status_code == 200
    assert r.json()["members"] == [leader_id, friend_id]
    assert party_join(stack, friend, party).status_code == 200   # retried

    r = requests.get(stack.url("/party/" + party), headers=friend, timeout=10)
    assert r.status_code == 200 and r.json()["leader"] == leader_id
    r = requests.get(stack.url("/party/" + party), headers=stranger,
                     timeout=10)
    assert r.status_code == 404

    assert party_create(stack, friend).status_code == 409
    r = party_join(stack, stranger, str(uuid.uuid4()))
    assert r.status_code == 404 and error_code(r) == "no_party"

    # only the leader queues it, and only where it fits in a team
    r = join(stack, friend, mode="squad", party_id=party)
    assert r.status_code == 403 and error_code(r) == "not_leader"
    r = join(stack, leader, mode="duel", party_id=party)
    assert r.status_code == 422 and error_code(r) == "party_too_large"
    r = join(stack, leader, mode="squad", party_id="nope")
    assert r.status_code == 422

    # an id that is no UUID names no party; a known path with another
    # method is 405, as everywhere; other paths under /party are no endpoint
    r = requests.get(stack.url("/party/nope"), headers=friend, timeout=10)
    assert r.status_code == 404 and error_code(r) == "no_party"
    r = party_join(stack, stranger, "nope")
    assert r.status_code == 404 and error_code(r) == "no_party"
    for method, path in (("GET", "/party"), ("DELETE", "/party/" + party),
                         ("GET", "/party/%s/join" % party)):
        r = requests.request(method, stack.url(path), headers=friend,
                             timeout=10)
        assert r.status_code == 405, (method, path, r.text)
        assert error_code(r) == "method_not_allowed"
    for path in ("/party/", "/party/%s/kick" % party, "/party/a/b/join"):
        r = requests.post(stack.url(path), headers=friend, timeout=10)
        assert r.status_code == 404 and error_code(r) == "not_found", path

    # queued together: the friend cannot queue alone meanwhile
    r = join(stack, leader, mode="squad", party_id=party)
    assert r.status_code == 202, r.text
    assert join(stack, friend, mode="squad").status_code == 409
    assert status(stack, friend).json()["ticket_id"] == r.json()["ticket_id"]
    cancel(stack, leader)


def test_a_party_is_matched_whole_on_one_team(stack):
    import jwt as pyjwt

    server = FakeServer(stack, 41004, mode="partysq")
    try:
        leader_id, leader = device_player(stack)
        friend_id, friend = device_player(stack)
        party = party_create(stack, leader).json()["party_id"]
        assert party_join(stack, friend, party).status_code == 200
        assert join(stack, leader, mode="partysq",
                    party_id=party).status_code == 202

        solos = [device_player(stack) for _ in range(4)]
        for _, auth in solos:
            assert join(stack, auth, mode="partysq").status_code == 202

        everyone = [(leader_id, leader), (friend_id, friend)] + solos
        seen = {}
        for pid, auth in everyone:
            st = wait_status(stack, auth, "matched")
            end = time.monotonic() + 5
            while "connection_ticket" not in st:
                assert time.monotonic() < end, st
                time.sleep(0.1)
                st = status(stack, auth).json()
            claims = pyjwt.decode(st["connection_ticket"],
                                  options={"verify_signature": False})
            assert claims["sub"] == pid
            seen[pid] = st

        assert len({st["match_id"] for st in seen.values()}) == 1
        assert seen[leader_id]["team"] == seen[friend_id]["team"]
        teams = [st["team"] for st in seen.values()]
        assert sorted(teams) == [0, 0, 0, 1, 1, 1]
    finally:
        server.stop()


# -- two nginx instances on one Redis ----------------------------------------

def test_two_nginx_instances_never_match_a_ticket_twice(stack, tmp_path):
    """A second nginx (its own workers, its own ports) on the same Redis and
    PostgreSQL: both take joins, both run matchers; the lease lets one
    match a queue at a time and the fenced claim makes every ticket end in
    at most one match."""
    import shutil

    var2 = str(tmp_path / "nginx2")
    os.makedirs(var2)
    for d in ("keys", "tls"):
        shutil.copytree(os.path.join(stack.var, d), os.path.join(var2, d))
    # the second nginx listens next to the first
    port2 = stack.http_port + 1
    env = dict(stack.env, GAME_VAR=var2, GAME_HTTP_PORT=str(port2),
               GAME_HTTPS_PORT=str(stack.https_port + 1))
    subprocess.run([os.path.join(stack.root, "scripts", "stack"), "render"],
                   env=env, check=True, capture_output=True)
    os.makedirs(os.path.join(var2, "log"), exist_ok=True)
    conf = os.path.join(var2, "nginx", "nginx.conf")
    nginx2 = ["nginx", "-p", os.path.join(var2, "nginx"), "-c", conf,
              "-e", os.path.join(var2, "log", "nginx-error.log")]
    r = subprocess.run(nginx2, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    second = "http://127.0.0.1:%d" % port2
    servers = [FakeServer(stack, 41100 + i, mode="pair5") for i in range(6)]
    try:
        players = []
        for i in range(12):
            pid, auth = device_player(stack)
            base = stack.base_url if i % 2 else second
            r = requests.post(base + "/matchmaking/join", headers=auth,
                              timeout=10,
                              json={"game_mode": "pair5", "regions":
                                    [{"region": "local", "latency_ms": 5}]})
            assert r.status_code == 202, r.text
            players.append((pid, auth, r.json()["ticket_id"]))

        matches = {}
        for pid, auth, ticket in players:
            st = wait_status(stack, auth, "matched", timeout=15)
            assert st["ticket_id"] == ticket
            matches.setdefault(st["match_id"], []).append(st)

        assert len(matches) == 6
        assert all(len(v) == 2 for v in matches.values())
        ports = [v[0]["server"]["port"] if "server" in v[0] else None
                 for v in matches.values()]
        # each match its own server (assignment may trail the claim a bit)
        assert len({p for p in ports if p}) == len([p for p in ports if p])
    finally:
        for s in servers:
            s.stop()
        subprocess.run(nginx2 + ["-s", "quit"], capture_output=True)


def test_a_ticket_nobody_matches_expires(stack):
    """Mode "brief" gives up after 2 s of waiting."""
    _, auth = device_player(stack)
    assert join(stack, auth, mode="brief").status_code == 202
    st = wait_status(stack, auth, "expired", timeout=10)
    assert st["queued_for_ms"] >= 2000
    # an expired ticket no longer holds the player
    assert join(stack, auth, mode="duel").status_code == 202
    cancel(stack, auth)


def test_concurrent_joins_of_one_player_make_one_ticket(stack):
    from concurrent.futures import ThreadPoolExecutor

    _, auth = device_player(stack)
    with ThreadPoolExecutor(max_workers=16) as ex:
        codes = list(ex.map(lambda _: join(stack, auth).status_code,
                            range(32)))
    assert codes.count(202) == 1, codes
    assert codes.count(409) == 31, codes
    cancel(stack, auth)


def test_the_matcher_survives_redis_forgetting_its_scripts(stack):
    """SCRIPT FLUSH (a Redis restart without persistence does the same):
    lease, claim, assign and the allocator's script come back by EVAL."""
    rds = redis.Redis(port=stack.redis_port)
    server = FakeServer(stack, 41006, mode="pair6")
    try:
        players = [device_player(stack) for _ in range(2)]
        rds.script_flush()
        for _, auth in players:
            assert join(stack, auth, mode="pair6").status_code == 202
        rds.script_flush()
        sts = [wait_status(stack, auth, "matched") for _, auth in players]
        assert sts[0]["match_id"] == sts[1]["match_id"]
    finally:
        server.stop()


def test_endpoints_without_the_guard_refuse_instead_of_carrying_on(stack):
    """An operator who forgets game_auth_jwt in front of a matchmaking
    location gets 401 answers, not a request that goes on with no player
    (and, before the fix, a second response on the same request)."""
    for method, path, body in (
            ("POST", "/test/unguarded/join",
             {"game_mode": "duel",
              "regions": [{"region": "local", "latency_ms": 10}]}),
            ("GET", "/test/unguarded/status", None),
            ("DELETE", "/test/unguarded/ticket", None),
            ("POST", "/test/unguarded/party", {}),
            ("GET", "/test/unguarded/party/0b7f7d6e-6a55-4f0e-9d59-"
                    "3a4f8f1e2c11", None)):
        r = requests.request(method, stack.url(path), json=body, timeout=10)
        assert r.status_code == 401, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized", r.text
    # the workers are fine: a normal request still answers
    assert requests.get(stack.url("/healthz"), timeout=5).status_code == 200
