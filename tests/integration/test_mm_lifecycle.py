"""The life of a ticket and of a match, unhappy paths first (issue 8).

Every path of a ticket must end in a state from which the player can move
on: cancelled tickets take no server, a no-show or a lost server frees the
players within seconds, a result is applied once and only from the match's
own server, and the results consumer survives Redis losing its group.
Everything runs against the real stack (nginx, Redis, PostgreSQL) and, where
a server has to behave like one, a real game-server.
"""

import json
import os
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt as pyjwt
import redis

from auth_helpers import psql
from mm_helpers import (SERVER_BIN, FakeServer, cancel, device_player,
                        error_code, join, publish_result, status,
                        wait_status)


def rds_of(stack):
    return redis.Redis(port=stack.redis_port, decode_responses=True)


def matched(stack, auth, timeout=10.0):
    """The player's status once matched with a server and a ticket."""
    end = time.monotonic() + timeout
    while True:
        st = status(stack, auth).json()
        if st.get("status") == "matched" and "connection_ticket" in st:
            return st
        assert time.monotonic() < end, st
        time.sleep(0.1)


def server_state(rds, server_id):
    return rds.hget("game:server:" + server_id, "state")


def wait_session(stack, match_id, want, timeout=5.0):
    """Wait until the match's game session says "want"."""
    end = time.monotonic() + timeout
    while session_status(stack, match_id) != want:
        assert time.monotonic() < end, session_status(stack, match_id)
        time.sleep(0.2)


def session_status(stack, match_id):
    rows = psql(stack, "SELECT status FROM game_sessions WHERE id = %s",
                match_id)
    return rows[0][0] if rows else None


# -- cancelled tickets -------------------------------------------------------

def test_cancelled_tickets_take_no_server(stack):
    """20 players join and cancel at once, with 8 Ready servers: no server
    is allocated but for a pair the matcher really matched before its
    cancels arrived (those players were told: their cancel says 409).  A
    lease reset afterwards (a reload does one) replays the queue's stream
    and still allocates nothing."""
    rds = rds_of(stack)
    servers = [FakeServer(stack, 41200 + i, mode="cancels") for i in range(8)]
    try:
        players = [device_player(stack) for _ in range(20)]

        def join_and_cancel(p):
            _, auth = p
            r = join(stack, auth, mode="cancels")
            assert r.status_code == 202, r.text
            return cancel(stack, auth).status_code

        with ThreadPoolExecutor(max_workers=20) as ex:
            cancels = list(ex.map(join_and_cancel, players))
        assert set(cancels) <= {200, 409}, cancels

        def check():
            told = {}
            for (pid, auth), code in zip(players, cancels):
                st = status(stack, auth).json()
                if code == 200:
                    assert st["status"] == "cancelled", st
                    assert st.get("reason") == "player"
                else:
                    assert st["status"] == "matched", st
                    told[st["match_id"]] = st["server"]["port"]
            busy = {s.port: rds.hget("game:server:" + s.id, "match")
                    for s in servers
                    if server_state(rds, s.id) != "Ready"}
            # every busy server holds a match its players were told about
            assert set(busy.values()) == set(told), (busy, told)
            assert set(busy) == set(told.values())
            return told

        time.sleep(3)     # three matcher passes
        before = check()

        # a new lease reads the queue's stream from its start
        fence = int(rds.hget("mm:lease:cancels:local", "fence"))
        rds.delete("mm:lease:cancels:local")
        end = time.monotonic() + 10
        while int(rds.hget("mm:lease:cancels:local", "fence") or 0) <= fence:
            assert time.monotonic() < end, "nobody took the lease again"
            time.sleep(0.1)
        time.sleep(2)
        assert check() == before
        assert rds.zcard("mm:live:cancels:local") == 0
    finally:
        for s in servers:
            s.stop()


def test_a_queue_counts_live_tickets_only(stack):
    """One player looping join and cancel must not fill a queue for
    everyone (its stream keeps every entry; the limit counts live
    tickets)."""
    _, churner = device_player(stack)
    for _ in range(6):
        assert join(stack, churner, mode="churn").status_code == 202
        assert cancel(stack, churner).status_code == 200

    others = [device_player(stack)[1] for _ in range(4)]
    codes = [join(stack, auth, mode="churn").status_code for auth in others]
    # max_queue=3: three live tickets, the fourth is refused
    assert codes == [202, 202, 202, 503], codes
    for auth in others[:3]:
        assert cancel(stack, auth).status_code == 200
    assert join(stack, others[3], mode="churn").status_code == 202
    cancel(stack, others[3])


def test_joins_are_limited_per_player(stack):
    """A join-and-cancel loop is bounded per player (30 tickets a minute):
    then 429 with Retry-After; other players are not affected."""
    _, auth = device_player(stack)
    made = 0
    while True:
        r = join(stack, auth, mode="churn")
        if r.status_code != 202:
            break
        made += 1
        assert cancel(stack, auth).status_code == 200
        assert made <= 30, "no limit after 30 tickets"
    assert made == 30
    assert r.status_code == 429 and error_code(r) == "too_many_joins", r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60

    # a refused join made no ticket; the others still queue
    assert status(stack, auth).json()["status"] == "cancelled"
    _, other = device_player(stack)
    assert join(stack, other, mode="churn").status_code == 202
    cancel(stack, other)


# -- players who never come, servers that go ---------------------------------

def start_server(stack, tmp_path, mode, *extra):
    priv = os.path.join(stack.var, "keys", "jwt-1.pem")
    pub = str(tmp_path / "jwt-1.pub.pem")
    subprocess.run(["openssl", "ec", "-in", priv, "-pubout", "-out", pub],
                   check=True, capture_output=True)
    sid = "%s-%s" % (mode, uuid.uuid4().hex[:6])
    port = 22000 + (uuid.uuid4().int % 80)
    proc = subprocess.Popen(
        [SERVER_BIN, "--id", sid, "--port", str(port), "--redis",
         "127.0.0.1:%d" % stack.redis_port, "--mode", mode,
         "--ticket-key", "1=" + pub] + list(extra),
        stdout=open(tmp_path / ("%s.out" % sid), "w"),
        stderr=open(tmp_path / ("%s.err" % sid), "w"))
    rds = rds_of(stack)
    end = time.monotonic() + 10
    while server_state(rds, sid) != "Ready":
        assert proc.poll() is None, "game-server exited"
        assert time.monotonic() < end, "the game server never got Ready"
        time.sleep(0.1)
    return sid, proc


def test_no_show_players_may_queue_again_soon(stack, tmp_path):
    """Two players are matched and nobody connects: after the server's
    join timeout (2 s here) the match is aborted and both tickets fail
    with reason no_show, a few seconds later at most; they may queue
    again (they were locked out for the ticket's 10 minutes before)."""
    sid, proc = start_server(stack, tmp_path, "noshow", "--join-timeout",
                             "2", "--join-policy", "abort")
    try:
        players = [device_player(stack) for _ in range(2)]
        for _, auth in players:
            assert join(stack, auth, mode="noshow").status_code == 202
        sts = [matched(stack, auth) for _, auth in players]
        match_id = sts[0]["match_id"]

        for _, auth in players:
            # join timeout + a result + a consumer pass, with room to spare
            st = wait_status(stack, auth, "failed", timeout=12)
            assert st["reason"] == "no_show", st
            assert st["match_id"] == match_id
            assert "connection_ticket" not in st and "server" not in st
            assert cancel(stack, auth).status_code == 404
            assert join(stack, auth, mode="noshow").status_code == 202
            assert cancel(stack, auth).status_code == 200

        rows = psql(stack, "SELECT status FROM game_sessions WHERE id = %s",
                    match_id)
        assert rows == [("aborted",)]
        # and the server is free for the next match
        end = time.monotonic() + 5
        while server_state(rds_of(stack), sid) != "Ready":
            assert time.monotonic() < end
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_lost_server_frees_its_players_and_a_late_result_counts(stack):
    """The server of a match stops heart-beating (killed): after
    game_mm_server_lost_after (5 s here) its players' tickets fail with
    reason server_lost and they may queue again; the session says lost.
    Should the server's result arrive after all, it is applied."""
    rds = rds_of(stack)
    server = FakeServer(stack, 41300, mode="lost")
    players = [device_player(stack) for _ in range(2)]
    for _, auth in players:
        assert join(stack, auth, mode="lost").status_code == 202
    sts = [matched(stack, auth) for _, auth in players]
    match_id = sts[0]["match_id"]
    assert sts[0]["server"]["port"] == 41300

    server.stop()
    for _, auth in players:
        st = wait_status(stack, auth, "failed", timeout=20)
        assert st["reason"] == "server_lost", st
    assert join(stack, players[0][1], mode="lost").status_code == 202
    cancel(stack, players[0][1])

    wait_session(stack, match_id, "lost", timeout=5)

    # the result comes late: it counts, once
    server.publish(rds, match_id, players=[p for p, _ in players],
                   winner=players[0][0])
    wait_session(stack, match_id, "finished", timeout=10)
    rows = psql(stack, "SELECT player_id::text, result FROM "
                       "game_session_players WHERE session_id = %s", match_id)
    assert dict(rows) == {players[0][0]: "win", players[1][0]: "loss"}
    # the players' tickets stay as they were: one of them queued again
    assert status(stack, players[1][1]).json()["reason"] == "server_lost"


def test_seated_players_play_and_the_others_may_queue_again(stack):
    """When the server starts the match it writes who is seated on the
    allocator's match record: those tickets become "playing", the others
    fail with reason no_show at once (not when the match ends)."""
    rds = rds_of(stack)
    server = FakeServer(stack, 41301, mode="seated")
    try:
        players = [device_player(stack) for _ in range(2)]
        for _, auth in players:
            assert join(stack, auth, mode="seated").status_code == 202
        sts = [matched(stack, auth) for _, auth in players]
        match_id = sts[0]["match_id"]

        # what the game server does when it starts with one player of two
        seated = players[0][0]
        rds.hset("game:server:" + server.id, "state", "Playing")
        rds.hset("game:match:" + match_id,
                 mapping={"seated": seated,
                          "started": str(int(time.time() * 1000))})

        st = wait_status(stack, players[0][1], "playing")
        assert st["server"]["port"] == 41301 and "connection_ticket" in st
        st = wait_status(stack, players[1][1], "failed")
        assert st["reason"] == "no_show"
        assert join(stack, players[1][1], mode="seated").status_code == 202
        cancel(stack, players[1][1])
        # a playing ticket cannot be cancelled, nor a second one opened
        assert cancel(stack, players[0][1]).status_code == 409
        assert join(stack, players[0][1], mode="seated").status_code == 409

        wait_session(stack, match_id, "playing", timeout=5)

        server.publish(rds, match_id, players=[seated], winner=seated)
        st = wait_status(stack, players[0][1], "finished")
        assert st["match_id"] == match_id
    finally:
        server.stop()


# -- results -----------------------------------------------------------------

def match_two(stack, mode, server):
    players = [device_player(stack) for _ in range(2)]
    for _, auth in players:
        assert join(stack, auth, mode=mode).status_code == 202
    sts = [matched(stack, auth) for _, auth in players]
    assert sts[0]["server"]["port"] == server.port
    return players, sts[0]["match_id"]


def dead_letters(rds, match_id):
    return [f for _, f in rds.xrange("game:results:dead")
            if f.get("match_id") == match_id]


def test_a_result_from_another_server_is_refused(stack):
    rds = rds_of(stack)
    server = FakeServer(stack, 41310, mode="results")
    try:
        players, match_id = match_two(stack, "results", server)
        ids = [p for p, _ in players]

        publish_result(rds, match_id, "impostor-1", players=ids,
                       winner=ids[0])
        end = time.monotonic() + 10
        while not dead_letters(rds, match_id):
            assert time.monotonic() < end, "the impostor's result stayed"
            time.sleep(0.2)
        dead = dead_letters(rds, match_id)[0]
        assert dead["reason"] == "wrong_server"
        assert dead["server_id"] == "impostor-1"
        assert session_status(stack, match_id) == "allocated"
        assert status(stack, players[0][1]).json()["status"] == "matched"

        # the match's own server is heard
        rds.delete("game:result:" + match_id)
        server.publish(rds, match_id, players=ids, winner=ids[0])
        for _, auth in players:
            wait_status(stack, auth, "finished")
        assert session_status(stack, match_id) == "finished"
    finally:
        server.stop()


def test_a_result_opens_the_session_the_matcher_could_not_record(stack):
    """The matcher records a session in PostgreSQL when it makes a match;
    if that failed, the result brings it from the match's Redis record."""
    rds = rds_of(stack)
    server = FakeServer(stack, 41311, mode="results")
    try:
        players, match_id = match_two(stack, "results", server)
        ids = [p for p, _ in players]
        psql(stack, "DELETE FROM game_sessions WHERE id = %s", match_id)

        server.publish(rds, match_id, players=ids, winner=ids[1])
        for _, auth in players:
            wait_status(stack, auth, "finished")
        rows = psql(stack, "SELECT s.status, s.server_id, p.player_id::text, "
                           "p.team, p.result FROM game_sessions s JOIN "
                           "game_session_players p ON p.session_id = s.id "
                           "WHERE s.id = %s ORDER BY p.team", match_id)
        assert [r[:2] for r in rows] == [("finished", server.id)] * 2
        assert {r[2]: r[4] for r in rows} == {ids[1]: "win", ids[0]: "loss"}
    finally:
        server.stop()


def test_each_match_outcome_is_published_once(stack):
    """What a match meant for its players goes to mm:outcomes, once per
    match, even when the game server's result is delivered twice."""
    rds = rds_of(stack)
    server = FakeServer(stack, 41314, mode="results")
    try:
        players, match_id = match_two(stack, "results", server)
        ids = [p for p, _ in players]
        server.publish(rds, match_id, players=ids, winner=ids[0])
        for _, auth in players:
            wait_status(stack, auth, "finished")

        def outcomes():
            return [json.loads(f["outcome"])
                    for _, f in rds.xrange("mm:outcomes")
                    if f["match_id"] == match_id]

        end = time.monotonic() + 5
        while not outcomes():
            assert time.monotonic() < end, "no outcome published"
            time.sleep(0.2)
        o = outcomes()[0]
        assert o["outcome"] == "applied" and o["mode"] == "results"
        by = {p["player_id"]: p for p in o["players"]}
        assert by[ids[0]]["result"] == "win" and by[ids[1]]["result"] == "loss"
        assert by[ids[0]]["rating_after"] > by[ids[0]]["rating_before"]
        assert {p["team"] for p in o["players"]} == {0, 1}

        # the result again, as a server retrying would: nothing new
        rds.xadd("game:results", {"match_id": match_id,
                                  "server_id": server.id,
                                  "result": json.dumps({
                                      "match_id": match_id,
                                      "reason": "time", "players": []})})
        time.sleep(2.5)
        assert len(outcomes()) == 1
    finally:
        server.stop()


def test_the_results_group_comes_back_after_redis_loses_it(stack):
    """Redis restarted without its data loses the consumer group: the
    consumer makes it again (it ignored NOGROUP before) and results are
    applied again."""
    rds = rds_of(stack)
    server = FakeServer(stack, 41312, mode="results")
    try:
        players, match_id = match_two(stack, "results", server)
        ids = [p for p, _ in players]
        rds.xgroup_destroy("game:results", "nginx")

        server.publish(rds, match_id, players=ids, winner=ids[0])
        for _, auth in players:
            wait_status(stack, auth, "finished", timeout=10)
        assert session_status(stack, match_id) == "finished"
        groups = {g["name"]: g for g in rds.xinfo_groups("game:results")}
        assert groups["nginx"]["pending"] == 0
        # consumers are named hostname:pid:random, unique per worker
        names = [c["name"] for c in rds.xinfo_consumers("game:results",
                                                        "nginx")]
        assert names and all(len(n.split(":")) == 3 for n in names), names
    finally:
        server.stop()


def test_a_result_that_is_not_json_goes_to_the_dead_letters(stack):
    rds = rds_of(stack)
    match_id = str(uuid.uuid4())
    rds.xadd("game:results", {"match_id": match_id, "server_id": "s-1",
                              "result": "{not json"})
    end = time.monotonic() + 10
    while not dead_letters(rds, match_id):
        assert time.monotonic() < end
        time.sleep(0.2)
    dead = dead_letters(rds, match_id)[0]
    assert dead["reason"] == "the result is not a JSON object"
    assert dead["source"] == "game:results" and dead["group"] == "nginx"
    assert rds.xinfo_groups("game:results")[0]["pending"] == 0


def test_results_that_keep_failing_go_to_the_dead_letters(ready_stack):
    """While PostgreSQL is down a result stays pending and is retried,
    less and less often; after max_deliveries (3 here) it is moved to the
    dead letters rather than retried for ever."""
    s = ready_stack
    rds = rds_of(s)
    match_id = str(uuid.uuid4())
    s.run("stop", "postgres")
    try:
        publish_result(rds, match_id, "s-2", players=[str(uuid.uuid4())])
        end = time.monotonic() + 30
        while not dead_letters(rds, match_id):
            assert time.monotonic() < end, rds.xpending("game:results",
                                                        "nginx")
            time.sleep(0.5)
        assert dead_letters(rds, match_id)[0]["reason"] == "max_deliveries"
    finally:
        s.run("start", "postgres")


def test_consumers_of_exited_workers_are_forgotten(stack):
    rds = rds_of(stack)
    end = time.monotonic() + 5
    while not rds.exists("game:results"):
        assert time.monotonic() < end, "no worker made the results group"
        time.sleep(0.1)
    ghost = "ghost:1:%s" % uuid.uuid4().hex[:12]
    rds.execute_command("XGROUP", "CREATECONSUMER", "game:results", "nginx",
                        ghost)
    names = lambda: [c["name"] for c in rds.xinfo_consumers("game:results",
                                                             "nginx")]
    assert ghost in names()
    end = time.monotonic() + 30
    while ghost in names():
        assert time.monotonic() < end, names()
        time.sleep(0.5)
    # a live worker idle as long, with nothing pending, may go too (Redis
    # 7.0 does not count an empty read as activity); it holds no state,
    # and the next entry makes it again: results are still read
    entry = rds.xadd("game:results", {"match_id": "not-ours",
                                      "server_id": "s", "result": "{}"})
    end = time.monotonic() + 5
    while True:
        group = rds.xinfo_groups("game:results")[0]
        if group["last-delivered-id"] == entry and group["pending"] == 0:
            break
        assert time.monotonic() < end, group
        time.sleep(0.2)
    assert names(), "the worker that read the entry is a consumer again"


# -- status ------------------------------------------------------------------

def test_every_status_read_signs_a_fresh_connection_ticket(stack):
    server = FakeServer(stack, 41313, mode="results")
    try:
        players, match_id = match_two(stack, "results", server)
        pid, auth = players[0]
        priv = os.path.join(stack.var, "keys", "jwt-1.pem")
        pub = subprocess.run(["openssl", "ec", "-in", priv, "-pubout"],
                             check=True, capture_output=True,
                             text=True).stdout
        a = status(stack, auth).json()["connection_ticket"]
        b = status(stack, auth).json()["connection_ticket"]
        assert a != b
        ca = pyjwt.decode(a, pub, algorithms=["ES256"])
        cb = pyjwt.decode(b, pub, algorithms=["ES256"])
        assert ca["jti"] != cb["jti"] and len(ca["jti"]) == 32
        for c in (ca, cb):
            assert c["sub"] == pid and c["match_id"] == match_id
            assert c["server_id"] == server.id
            assert c["exp"] - c["iat"] == 60
        server.publish(rds_of(stack), match_id,
                       players=[p for p, _ in players])
        for _, auth in players:
            st = wait_status(stack, auth, "finished")
            assert "connection_ticket" not in st
    finally:
        server.stop()


def test_a_long_poll_ends_when_its_client_leaves(stack):
    """Clients that close their connection while waiting on
    /matchmaking/status?wait= are noticed at once (logged 499), not 20
    seconds later."""
    _, auth = device_player(stack)
    assert join(stack, auth, mode="squad").status_code == 202
    probe = uuid.uuid4().hex
    socks = []
    for _ in range(10):
        c = socket.create_connection(("127.0.0.1", stack.http_port))
        c.sendall(("GET /matchmaking/status?wait=20&probe=%s HTTP/1.1\r\n"
                   "Host: localhost\r\nAuthorization: %s\r\n\r\n"
                   % (probe, auth["Authorization"])).encode())
        socks.append(c)
    time.sleep(0.5)
    for c in socks:
        c.close()

    log = os.path.join(stack.var, "log", "nginx-access.log")
    end = time.monotonic() + 8
    while True:
        with open(log) as f:
            lines = [l for l in f if probe in l]
        if len(lines) == 10:
            break
        assert time.monotonic() < end, lines
        time.sleep(0.2)
    assert all('" 499 ' in l for l in lines), lines
    cancel(stack, auth)
