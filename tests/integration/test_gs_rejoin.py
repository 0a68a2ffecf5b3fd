"""A dropped player comes back to its match through the HTTP API.

A real game-server registers in the test stack's Redis (mode `rejoin`, a
queue of its own in conf/test.conf) and trusts the stack's ticket key, so
the connection tickets nginx signs on GET /matchmaking/status are the ones
it checks.  Two guests sign in, join, are matched onto it and connect with
game-bot; one of them drops (its process is killed: ENet on the server
still holds the peer for seconds), reads its status again, gets a fresh
ticket and is seated again, in the same match and slot.  The ticket it
first played with stays refused.
"""

import base64
import json
import os
import subprocess
import time
import uuid

import redis

from mm_helpers import device_player, join, status
from test_bot_http import BOT_BIN, SERVER_BIN, free_udp_port, public_key
from test_gameserver import env, keys  # noqa: F401


def claims(ticket):
    body = ticket.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def matched(stack, auth, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        st = status(stack, auth).json()
        if st.get("status") == "matched" and "connection_ticket" in st:
            return st
        assert time.monotonic() < end, st
        time.sleep(0.1)


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.startswith("{")]


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, what
        time.sleep(0.05)


def bot_args(port, ticket, duration):
    return [BOT_BIN, "--server", "127.0.0.1:%d" % port, "--ticket", ticket,
            "--duration", str(duration), "--connect-timeout", "3"]


def run_bot(port, ticket, duration):
    p = subprocess.run(bot_args(port, ticket, duration), capture_output=True,
                       text=True, timeout=60)
    out = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, (json.loads(out[-1]) if out else None), p.stderr


def test_a_dropped_player_rejoins_its_match_with_a_ticket_from_status(
        stack, tmp_path):
    pub = public_key(stack, tmp_path)
    port = free_udp_port()
    sid = "rejoin-" + uuid.uuid4().hex[:6]
    out = tmp_path / "server.out"
    server = subprocess.Popen(
        [SERVER_BIN, "--id", sid, "--port", str(port), "--redis",
         "127.0.0.1:%d" % stack.redis_port, "--mode", "rejoin",
         "--region", "local", "--ticket-key", "1=" + pub,
         "--match-seconds", "60", "--max-matches", "1",
         "--join-timeout", "30"],
        stdout=open(out, "w"), stderr=open(tmp_path / "server.err", "w"))
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    bots = []
    try:
        wait_for(lambda: rds.hget("game:server:" + sid, "state") == "Ready",
                 10, "the game server never got Ready")

        (alice, a_auth), (bob, b_auth) = [device_player(stack)
                                          for _ in range(2)]
        for auth in (a_auth, b_auth):
            assert join(stack, auth, mode="rejoin").status_code == 202
        a_st, b_st = matched(stack, a_auth), matched(stack, b_auth)
        match_id = a_st["match_id"]
        assert b_st["match_id"] == match_id
        assert a_st["server"]["port"] == port

        def joins():
            return [(l["player"], l["slot"]) for l in lines(out)
                    if l["event"] == "join"]

        # both play; then alice's process dies
        for st in (a_st, b_st):
            bots.append(subprocess.Popen(
                bot_args(port, st["connection_ticket"], 60),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: len(joins()) == 2, 10, "the players never joined")
        slot = dict(joins())[alice]
        first = a_st["connection_ticket"]
        bots[0].kill()
        bots[0].wait()

        # her status still says matched, with a freshly signed ticket
        again = status(stack, a_auth).json()
        assert again["status"] == "matched", again
        assert again["match_id"] == match_id
        assert again["server"]["port"] == port
        fresh = again["connection_ticket"]
        old_c, new_c = claims(first), claims(fresh)
        assert new_c["jti"] != old_c["jti"]
        for c in (old_c, new_c):
            assert (c["sub"], c["match_id"], c["server_id"]) == \
                (alice, match_id, sid)

        # the fresh ticket seats her again: same match, same slot
        rc, summary, err = run_bot(port, fresh, 2)
        assert rc == 0, (summary, err)
        assert summary["bots"][0]["snapshots"] > 0, summary
        assert summary["bots"][0]["refused"] is None
        assert [s for p, s in joins() if p == alice] == [slot, slot]
        assert [p for p, s in joins() if p == bob] == [bob]
        allocated = [l for l in lines(out) if l["event"] == "allocated"]
        assert [l["match_id"] for l in allocated] == [match_id]

        # the ticket she first played with is spent; so is the fresh one
        for spent in (first, fresh):
            rc, summary, err = run_bot(port, spent, 3)
            assert rc == 1, (summary, err)
            assert summary["bots"][0]["refused"] == "replayed", summary
    finally:
        for b in bots:
            if b.poll() is None:
                b.kill()
                b.wait()
        server.terminate()
        server.wait(timeout=30)


# -- the used-ticket memory and later allocations ----------------------------
#
# The server used to empty its used-ticket memory on every allocation
# (nused = 0).  Tickets are bound to one match and one server (claims
# match_id and server_id), so a ticket spent in match A can never play in a
# later match B either way; and A cannot come back to the server, since the
# allocator refuses to place a match that is over (MATCH_GONE).  What shows
# the memory from outside is the refusal: the server checks a ticket
# against the tickets it seated before it compares the match, so a spent
# ticket is refused as `replayed` while the server remembers it, and as
# `wrong_match` (or `match_over`) once forgotten.  The memory itself (never
# reset, a bounded ring) is unit-tested in tests/unit/test_gs_used.c.

def test_a_ticket_spent_in_one_match_stays_spent_through_the_next_allocation(
        env):
    p = env.server(max_matches=3, match_seconds=1, join_timeout=5)

    def readies():
        return sum(1 for l in env.lines(p) if l["event"] == "ready")

    def allocated():
        return [l["match_id"] for l in env.lines(p)
                if l["event"] == "allocated"]

    def allocate(match, then):
        rc, a = env.allocate(match, players=1)
        assert rc == 0 and a["server_id"] == p.sid, a
        wait_for(lambda: allocated() == then, 10, (match, allocated()))

    def ended(n, match):
        wait_for(lambda: readies() > n and env.state(p.sid) == "Ready", 15,
                 "match %s never ended" % match)

    # match A: alice plays with her ticket, which is spent
    spent = env.ticket("alice", "m-first", p.sid, exp_in=120)
    n = readies()
    allocate("m-first", ["m-first"])
    rc, out, err = env.raw_bot(p, spent, duration=3)
    assert rc == 0 and out["bots"][0]["snapshots"] > 0, (out, err)
    ended(n, "m-first")

    # match B on the same server: A's ticket is still known as spent
    n = readies()
    allocate("m-second", ["m-first", "m-second"])
    rc, out, err = env.raw_bot(p, spent, duration=3)
    assert rc == 1 and out["bots"][0]["refused"] == "replayed", (out, err)
    # an unspent ticket of A's is refused for its claims: the memory, not
    # the match, refused the spent one
    other = env.ticket("alice", "m-first", p.sid)
    rc, out, err = env.raw_bot(p, other, duration=3)
    assert rc == 1 and out["bots"][0]["refused"] in \
        ("wrong_match", "match_over"), (out, err)
    ended(n, "m-second")

    # and A never comes back to it: the allocator refuses a finished match
    rc, a = env.allocate("m-first", players=1)
    assert rc != 0 and "MATCH_GONE" in a, a
    assert allocated() == ["m-first", "m-second"]
