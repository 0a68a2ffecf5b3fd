"""The game server allocator against a real Redis, through the real CLI.

Every test works under its own key prefix and removes it afterwards, so
the tests can share the stack's Redis with anything else.  Expected
behaviour is spelled out in gameserver/ALLOCATOR.md.
"""

import json
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis


class Run:
    """One finished game-allocate process."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = [json.loads(l) for l in proc.stdout.splitlines()
                      if l.startswith("{")]
        errs = [l for l in proc.stderr.splitlines() if l.startswith("{")]
        self.error = json.loads(errs[-1]) if errs else None

    @property
    def out(self):
        assert len(self.lines) == 1, (self.stdout, self.stderr)
        return self.lines[0]

    def __repr__(self):
        return "rc=%d out=%r err=%r" % (self.rc, self.stdout, self.stderr)


class Allocator:
    """game-allocate bound to one Redis and one key prefix."""

    def __init__(self, stack, prefix):
        self.bin = os.path.join(stack.root, "gameserver", "build",
                                "game-allocate")
        self.base = [self.bin, "--redis", "127.0.0.1:%d" % stack.redis_port,
                     "--prefix", prefix]
        self.prefix = prefix
        self.redis = redis.Redis(port=stack.redis_port, decode_responses=True)

    def run(self, *args):
        proc = subprocess.run(self.base + [str(a) for a in args],
                              capture_output=True, text=True, timeout=60)
        return Run(proc)

    def ok(self, *args):
        r = self.run(*args)
        assert r.rc == 0, r
        return r

    def register(self, sid, region="eu", mode="duel", port=7000, token=None,
                 **opts):
        args = ["register", "--id", sid, "--addr", "10.0.0.1",
                "--port", port, "--region", region, "--mode", mode,
                "--token", token or "tok-" + sid]
        for k, v in opts.items():
            args += ["--" + k, v]
        return self.ok(*args).out

    def allocate(self, match, region="eu", mode="duel", *extra):
        return self.run("allocate", "--region", region, "--mode", mode,
                        "--match", match, *extra)

    def set_state(self, sid, state, token=None, match=None, seated=None):
        extra = []
        if match is not None:
            extra += ["--match", match]
        if seated is not None:
            extra += ["--seated", seated]
        return self.run("set-state", "--id", sid, "--token",
                        token or "tok-" + sid, "--state", state, *extra)

    def drain(self, sid, verb="drain"):
        return self.run(verb, "--id", sid)

    def heartbeat(self, sid, token=None):
        return self.run("heartbeat", "--id", sid, "--token",
                        token or "tok-" + sid)

    def servers(self, *args):
        return {s["id"]: s for s in self.ok("list", *args).lines}

    def key(self, name):
        return self.prefix + name

    def keys(self):
        return list(self.redis.scan_iter(match=self.prefix + "*",
                                         count=1000))


@pytest.fixture
def alloc(stack):
    a = Allocator(stack, "t%s:" % uuid.uuid4().hex[:12])
    assert os.access(a.bin, os.X_OK), "build gameserver first: make"
    yield a
    keys = a.keys()
    if keys:
        a.redis.delete(*keys)


def pool_map(fn, items, workers=50):
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def test_register_and_heartbeat_are_visible_in_list(alloc):
    assert alloc.register("s1", port=7001, build="1.2", host="node-a",
                          capacity=4) == {"server_id": "s1", "state": "Ready",
                                          "token": "tok-s1"}
    alloc.register("s2", region="us", state="Starting")

    servers = alloc.servers()
    assert sorted(servers) == ["s1", "s2"]
    assert servers["s1"] == {
        "id": "s1", "region": "eu",
        "labels": {"mode": "duel", "build": "1.2", "host": "node-a"},
        "state": "Ready", "address": "10.0.0.1", "port": 7001,
        "capacity": 4, "match_id": "", "alive": True, "drain": False,
    }
    assert servers["s2"]["state"] == "Starting"
    assert list(alloc.servers("--region", "us")) == ["s2"]

    hb = alloc.heartbeat("s1")
    assert hb.rc == 0
    assert hb.out == {"server_id": "s1", "state": "Ready", "match_id": "",
                      "players": 0, "mode": "duel", "drain": False}

    # only the owner may speak for a server
    r = alloc.heartbeat("s1", token="someone-else")
    assert r.rc == 3 and r.error["error"] == "NOT_OWNER"
    r = alloc.heartbeat("nobody")
    assert r.rc == 3 and r.error["error"] == "NOT_FOUND"

    # heartbeats keep a server alive past its ttl: 1.2 s of beats, ttl 1 s
    alloc.register("s3", ttl=1000)
    beats = alloc.ok("heartbeat", "--id", "s3", "--token", "tok-s3",
                     "--repeat", 4, "--interval", 400)
    assert len(beats.lines) == 4
    assert alloc.servers()["s3"]["alive"] is True
    assert alloc.redis.pttl(alloc.key("hb:s3")) > 500


def test_1000_concurrent_allocations_over_50_servers(alloc):
    ids = ["srv%02d" % i for i in range(50)]
    # a long ttl: this test is about exclusivity, not liveness
    pool_map(lambda i: alloc.register(i, host="h%d" % (int(i[3:]) // 5),
                                      ttl=60000), ids)
    assert len(alloc.servers()) == 50

    matches = ["match-%04d" % i for i in range(1000)]
    runs = pool_map(lambda m: alloc.allocate(m, "eu", "duel",
                                             "--players", 2), matches)

    won = [(m, r.out) for m, r in zip(matches, runs) if r.rc == 0]
    lost = [r for r in runs if r.rc != 0]

    assert len(won) == 50
    assert {o["server_id"] for _, o in won} == set(ids)
    assert all(o["match_id"] == m and not o["existing"] for m, o in won)
    assert len(lost) == 950
    assert all(r.rc == 2 and r.error["error"] == "NO_SERVER" for r in lost)

    # Redis agrees: each server holds exactly the match it was given
    for m, o in won:
        h = alloc.redis.hgetall(alloc.key("server:" + o["server_id"]))
        assert (h["state"], h["match"]) == ("Allocated", m)
        assert alloc.redis.hget(alloc.key("match:" + m), "server") \
            == o["server_id"]
    assert alloc.redis.zcard(alloc.key("ready:eu:duel")) == 0
    assert all(s["state"] == "Allocated" for s in alloc.servers().values())


def test_same_match_id_returns_the_same_server(alloc):
    for sid in ("a", "b", "c"):
        alloc.register(sid, ttl=60000)

    first = alloc.allocate("m1").out
    again = alloc.allocate("m1").out
    assert again["server_id"] == first["server_id"]
    assert (first["existing"], again["existing"]) == (False, True)

    # twenty callers racing on one match take one server between them
    runs = pool_map(lambda _: alloc.allocate("m2"), range(20), workers=20)
    assert all(r.rc == 0 for r in runs), runs
    assert len({r.out["server_id"] for r in runs}) == 1
    assert sum(not r.out["existing"] for r in runs) == 1
    states = [s["state"] for s in alloc.servers().values()]
    assert sorted(states) == ["Allocated", "Allocated", "Ready"]

    # once the match is over, a late retry must not take another server
    sid = first["server_id"]
    assert alloc.set_state(sid, "Playing").rc == 0
    assert alloc.set_state(sid, "Finished").rc == 0
    r = alloc.allocate("m1")
    assert r.rc == 3 and r.error["error"] == "MATCH_GONE"
    assert alloc.set_state(sid, "Ready").rc == 0
    r = alloc.allocate("m1")
    assert r.rc == 3 and r.error["error"] == "MATCH_GONE"
    assert alloc.redis.pttl(alloc.key("match:m1")) > 0


def test_server_that_stops_heartbeating_is_never_allocated(alloc):
    # equal load, so the index would offer "srv-z" first
    alloc.register("srv-z", host="hz")
    born = time.monotonic()
    alloc.register("srv-a", host="ha")
    assert alloc.redis.zrevrange(alloc.key("ready:eu:duel"), 0, -1) \
        == ["srv-z", "srv-a"]

    # srv-a beats every second, srv-z is silent; its ttl is 3 s
    deadline = born + 3.2
    while True:
        assert alloc.heartbeat("srv-a").rc == 0
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(1.0, left))

    servers = alloc.servers()
    assert servers["srv-z"]["alive"] is False
    assert servers["srv-a"]["alive"] is True

    assert alloc.allocate("m1").out["server_id"] == "srv-a"
    r = alloc.allocate("m2")
    assert r.rc == 2 and r.error["error"] == "NO_SERVER"
    assert alloc.redis.zscore(alloc.key("ready:eu:duel"), "srv-z") is None

    # it cannot slip back in by beating or by declaring itself Ready
    r = alloc.heartbeat("srv-z")
    assert r.rc == 3 and r.error["error"] == "EXPIRED"
    r = alloc.set_state("srv-z", "Ready")
    assert r.rc == 3 and r.error["error"] == "EXPIRED"
    r = alloc.allocate("m3")
    assert r.rc == 2

    # only registering again brings it back
    alloc.register("srv-z", host="hz")
    assert alloc.allocate("m4").out["server_id"] == "srv-z"


def test_illegal_transitions_are_refused(alloc):
    alloc.register("s1", state="Starting", ttl=60000)

    r = alloc.set_state("s1", "Playing")
    assert r.rc == 3 and r.error["error"] == "ILLEGAL"
    assert "Starting" in r.error["message"]
    # only allocate.lua makes a server Allocated
    assert alloc.set_state("s1", "Allocated").error["error"] == "ILLEGAL"
    assert alloc.servers()["s1"]["state"] == "Starting"
    assert alloc.allocate("m0").rc == 2         # Starting is not Ready

    assert alloc.set_state("s1", "Ready").rc == 0
    assert alloc.set_state("s1", "Finished").error["error"] == "ILLEGAL"
    r = alloc.set_state("s1", "Shutdown", token="not-mine")
    assert r.rc == 3 and r.error["error"] == "NOT_OWNER"

    assert alloc.allocate("m1").out["server_id"] == "s1"
    assert alloc.set_state("s1", "Ready").error["error"] == "ILLEGAL"
    assert alloc.heartbeat("s1").out["match_id"] == "m1"

    # the full life, then reuse for the next match
    for state in ("Playing", "Playing", "Finished", "Ready"):
        assert alloc.set_state("s1", state).out["state"] == state
    assert alloc.heartbeat("s1").out["match_id"] == ""
    assert alloc.allocate("m2").out["server_id"] == "s1"

    assert alloc.set_state("s1", "Shutdown").rc == 0
    assert alloc.set_state("s1", "Ready").error["error"] == "ILLEGAL"
    assert alloc.allocate("m3").rc == 2

    # a live server keeps its id against a newcomer with another token
    alloc.register("s2")
    r = alloc.run("register", "--id", "s2", "--addr", "10.9.9.9", "--port",
                  1, "--region", "eu", "--mode", "duel", "--token", "other")
    assert r.rc == 3 and r.error["error"] == "NOT_OWNER"


def test_packed_fills_the_busiest_host_first(alloc):
    for sid in ("a1", "a2", "a3", "a4"):
        alloc.register(sid, host="host-a", ttl=60000)
    for sid in ("b1", "b2"):
        alloc.register(sid, host="host-b", ttl=60000)

    got = [alloc.allocate("m%d" % i).out["server_id"] for i in range(5)]
    host = [g[0] for g in got]
    # whichever host comes first is filled before the other is touched
    assert host == ["b", "b", "a", "a", "a"]

    # b1 comes back while host-a runs 3 matches and host-b runs 1: the
    # last server of host-a still goes first
    b1 = got[1]
    for state in ("Finished", "Ready"):
        assert alloc.set_state(b1, state).rc == 0
    assert alloc.allocate("m5").out["server_id"] == "a1"
    assert alloc.allocate("m6").out["server_id"] == b1
    assert int(alloc.redis.get(alloc.key("hostload:host-a"))) == 4


def test_labels_and_capacity_select_servers(alloc):
    alloc.register("old", build="1.0", capacity=10, ttl=60000)
    alloc.register("new", build="2.0", capacity=2, ttl=60000)
    alloc.register("ctf", mode="ctf", ttl=60000)

    r = alloc.allocate("m1", "eu", "duel", "--build", "3.0")
    assert r.rc == 2 and r.error["error"] == "NO_SERVER"
    assert alloc.allocate("m2", "us", "duel").rc == 2
    assert alloc.allocate("m3", "eu", "ffa").rc == 2

    # "new" holds 2 players only
    r = alloc.allocate("m4", "eu", "duel", "--build", "2.0", "--players", 4)
    assert r.rc == 2
    r = alloc.allocate("m5", "eu", "duel", "--build", "2.0", "--players", 2)
    assert r.out["server_id"] == "new"

    # "new" left both of its indexes
    assert alloc.allocate("m6", "eu", "duel", "--players", 2) \
        .out["server_id"] == "old"
    assert alloc.allocate("m7", "eu", "ctf").out["server_id"] == "ctf"
    assert alloc.allocate("m8", "eu", "duel").rc == 2


def test_deregister_and_reap_leave_nothing_behind(alloc):
    alloc.register("keep", ttl=60000)
    alloc.register("gone", ttl=60000)
    alloc.register("busy", mode="ctf", host="hb", ttl=300)
    alloc.register("idle", mode="ffa", ttl=300)
    assert alloc.allocate("m-busy", "eu", "ctf").out["server_id"] == "busy"
    assert alloc.redis.get(alloc.key("hostload:hb")) == "1"

    r = alloc.run("deregister", "--id", "gone", "--token", "wrong")
    assert r.rc == 3 and r.error["error"] == "NOT_OWNER"
    assert alloc.ok("deregister", "--id", "gone", "--token", "tok-gone") \
        .out == {"server_id": "gone", "deregistered": True}
    assert "gone" not in alloc.servers()

    time.sleep(0.4)         # "busy" and "idle" miss their 300 ms ttl
    # no grace: a missed ttl is enough (the default grace is the next test)
    assert alloc.ok("reap", "--grace", 0).out == {"reaped": 2}
    assert sorted(alloc.servers()) == ["keep"]
    assert alloc.redis.get(alloc.key("hostload:hb")) is None
    assert alloc.redis.pttl(alloc.key("match:m-busy")) > 0

    assert alloc.ok("deregister", "--id", "keep", "--token", "tok-keep")
    # only match tombstones, which expire on their own, may remain
    assert all(":match:" in k for k in alloc.keys()), alloc.keys()


def test_a_stale_finished_cannot_release_a_fresh_allocation(alloc):
    alloc.register("s1", ttl=60000)
    assert alloc.allocate("m1").out["server_id"] == "s1"
    for state in ("Playing", "Finished", "Ready"):
        assert alloc.set_state("s1", state, match="m1").rc == 0
    assert alloc.allocate("m2").out["server_id"] == "s1"

    # m1's transitions, queued late: each one is fenced by its match id
    for state in ("Finished", "Ready", "Playing"):
        r = alloc.set_state("s1", state, match="m1")
        assert r.rc == 3 and r.error["error"] == "STALE", r
        assert '"m2"' in r.error["message"]
    h = alloc.redis.hgetall(alloc.key("server:s1"))
    assert (h["state"], h["match"]) == ("Allocated", "m2")
    assert alloc.allocate("m2").out["existing"] is True
    assert alloc.redis.hget(alloc.key("match:m2"), "started") is None

    # the match it does hold goes on; a repeat is still no error
    assert alloc.set_state("s1", "Playing", match="m2").rc == 0
    assert alloc.set_state("s1", "Playing", match="m2").rc == 0
    # an operator may skip the fence
    assert alloc.set_state("s1", "Finished").rc == 0
    r = alloc.set_state("s1", "Ready", match="m1")
    assert r.rc == 3 and r.error["error"] == "STALE"
    assert alloc.set_state("s1", "Ready", match="m2").rc == 0


def test_playing_writes_who_was_seated_into_the_match_record(alloc):
    alloc.register("s1", ttl=60000)
    alloc.register("s2", ttl=60000)
    assert alloc.allocate("m1", "eu", "duel", "--players", 3).rc == 0
    assert alloc.allocate("m2", "eu", "duel", "--players", 2).rc == 0
    sid1 = alloc.redis.hget(alloc.key("match:m1"), "server")
    sid2 = alloc.redis.hget(alloc.key("match:m2"), "server")

    t0 = int(alloc.redis.time()[0]) * 1000
    assert alloc.set_state(sid1, "Playing", match="m1", seated="p1,p2") \
        .out["state"] == "Playing"
    rec = alloc.redis.hgetall(alloc.key("match:m1"))
    assert rec["seated"] == "p1,p2" and rec["server"] == sid1
    assert t0 <= int(rec["started"]) <= t0 + 60000

    # a retry after a lost reply changes nothing
    assert alloc.set_state(sid1, "Playing", match="m1", seated="p3").rc == 0
    assert alloc.redis.hget(alloc.key("match:m1"), "seated") == "p1,p2"

    # nobody seated: an empty list, which says "no one came"
    assert alloc.set_state(sid2, "Playing", match="m2", seated="").rc == 0
    rec = alloc.redis.hgetall(alloc.key("match:m2"))
    assert rec["seated"] == "" and int(rec["started"]) >= t0

    # ids with the separator are refused before they reach Redis
    r = alloc.set_state(sid2, "Playing", match="m2", seated="a,,b")
    assert r.rc == 1 and r.error["error"] == "BAD_ARG"


def test_a_busy_server_resumes_after_its_heartbeat_lapsed(alloc):
    alloc.register("busy", ttl=300)
    alloc.register("idle", mode="ffa", ttl=300)
    assert alloc.allocate("m1").out["server_id"] == "busy"
    time.sleep(0.5)
    assert not alloc.redis.exists(alloc.key("hb:busy"))

    # Redis was out of reach longer than the ttl; its record holds m1:
    # the match goes on, and the heartbeat comes back
    assert alloc.set_state("busy", "Playing", match="m1").rc == 0
    hb = alloc.heartbeat("busy")
    assert hb.rc == 0, hb
    assert (hb.out["state"], hb.out["match_id"]) == ("Playing", "m1")
    assert alloc.redis.pttl(alloc.key("hb:busy")) > 0
    # it was not put back into any Ready index by resuming
    assert alloc.redis.zcard(alloc.key("ready:eu:duel")) == 0
    assert alloc.allocate("m2").rc == 2

    # a Ready server that lapsed must register again, as before
    r = alloc.heartbeat("idle")
    assert r.rc == 3 and r.error["error"] == "EXPIRED"
    assert not alloc.redis.exists(alloc.key("hb:idle"))
    # and a lapsed busy server cannot go back to Ready without registering
    time.sleep(0.5)
    assert alloc.set_state("busy", "Finished", match="m1").rc == 0
    r = alloc.set_state("busy", "Ready", match="m1")
    assert r.rc == 3 and r.error["error"] == "EXPIRED"


def test_reap_spares_servers_that_beat_within_the_grace(alloc):
    alloc.register("busy", host="hb", ttl=300)
    alloc.register("idle", mode="ffa", ttl=300)
    alloc.register("live", mode="ctf", ttl=60000)
    assert alloc.allocate("m-busy").out["server_id"] == "busy"
    t0 = int(alloc.redis.time()[0]) * 1000
    assert alloc.heartbeat("live").rc == 0
    assert int(alloc.redis.hget(alloc.key("server:live"), "beat")) >= t0

    # the keys lapsed a moment ago: a Redis blink, not a death
    time.sleep(0.4)
    assert alloc.ok("reap").out == {"reaped": 0}
    assert alloc.ok("reap", "--grace", 60000).out == {"reaped": 0}
    assert sorted(alloc.servers()) == ["busy", "idle", "live"]
    assert alloc.redis.get(alloc.key("hostload:hb")) == "1"

    # 31 s without a beat is past the default grace (30 s)
    old = int(alloc.redis.time()[0]) * 1000 - 31000
    for sid in ("busy", "idle", "live"):
        alloc.redis.hset(alloc.key("server:" + sid), "beat", old)
    assert alloc.ok("reap").out == {"reaped": 2}
    # a live heartbeat key is enough, whatever the beat says
    assert sorted(alloc.servers()) == ["live"]
    assert alloc.redis.get(alloc.key("hostload:hb")) is None


def test_drain_shuts_a_ready_server_and_marks_a_busy_one(alloc):
    # equal load: the greatest id, "z-busy", is allocated first
    busy, ready = "z-busy", "a-ready"
    alloc.register(ready, host="h1", ttl=60000)
    alloc.register("start", host="h1", state="Starting", ttl=60000)
    alloc.register(busy, host="h1", ttl=60000)
    assert alloc.allocate("m2").out["server_id"] == busy

    r = alloc.drain(ready)
    assert r.rc == 0 and r.out == {"server_id": ready, "status": "OK",
                                   "state": "Shutdown"}
    assert alloc.redis.zscore(alloc.key("ready:eu:duel"), ready) is None
    assert alloc.allocate("m3").rc == 2
    assert alloc.drain("start", verb="cordon").out["state"] == "Shutdown"
    # a drained server that asks for Ready is told Shutdown, and stays so
    assert alloc.set_state("start", "Ready").out["state"] == "Shutdown"
    assert alloc.redis.hget(alloc.key("server:start"), "state") == "Shutdown"
    # again: no error, nothing changes
    assert alloc.drain(ready).out["status"] == "OK"

    r = alloc.drain(busy)
    assert r.rc == 0 and r.out == {"server_id": busy, "status": "BUSY",
                                   "state": "Allocated"}
    hb = alloc.heartbeat(busy)
    assert (hb.out["state"], hb.out["match_id"], hb.out["drain"]) == \
        ("Allocated", "m2", True)
    assert alloc.servers()[busy]["drain"] is True

    # the match plays out; the way back to Ready leads to Shutdown
    assert alloc.set_state(busy, "Playing", match="m2").rc == 0
    assert alloc.set_state(busy, "Finished", match="m2").rc == 0
    r = alloc.set_state(busy, "Ready", match="m2")
    assert r.rc == 0 and r.out["state"] == "Shutdown"
    assert alloc.set_state(busy, "Ready", match="m2").out["state"] \
        == "Shutdown"
    assert alloc.redis.zcard(alloc.key("ready:eu:duel")) == 0
    assert alloc.redis.get(alloc.key("hostload:h1")) is None
    assert alloc.allocate("m4").rc == 2

    r = alloc.drain("nobody")
    assert r.rc == 3 and r.error["error"] == "NOT_FOUND"


def test_drain_racing_allocate_has_exactly_one_outcome(alloc):
    """Rounds of allocations and drains sent at once by separate
    processes: every server either shut down untouched by any match, or
    was allocated to exactly one match and keeps it, marked drained."""
    rounds, n = 6, 6
    for rnd in range(rounds):
        ids = ["r%d-s%d" % (rnd, i) for i in range(n)]
        for sid in ids:
            alloc.register(sid, mode="race%d" % rnd, ttl=60000)
        jobs = [("allocate", "r%d-m%d" % (rnd, i)) for i in range(n)] + \
               [("drain", sid) for sid in ids]
        # interleave, so that neither kind starts with a head start
        jobs = [j for pair in zip(jobs[:n], jobs[n:]) for j in pair]
        procs = []
        for kind, arg in jobs:
            args = (["allocate", "--region", "eu", "--mode",
                     "race%d" % rnd, "--match", arg] if kind == "allocate"
                    else ["drain", "--id", arg])
            procs.append((kind, arg, subprocess.Popen(
                alloc.base + args, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)))
        got, drained = {}, {}
        for kind, arg, p in procs:
            out, err = p.communicate(timeout=30)
            if kind == "allocate":
                if p.returncode == 0:
                    o = json.loads(out)
                    assert o["server_id"] not in got, (o, got)
                    got[o["server_id"]] = arg
                else:
                    assert p.returncode == 2 and "NO_SERVER" in err, err
            else:
                assert p.returncode == 0, err
                drained[arg] = json.loads(out)

        for sid in ids:
            h = alloc.redis.hgetall(alloc.key("server:" + sid))
            if sid in got:
                assert drained[sid]["status"] == "BUSY", (sid, drained)
                assert (h["state"], h["match"], h["drain"]) == \
                    ("Allocated", got[sid], "1")
                assert alloc.redis.hget(alloc.key("match:" + got[sid]),
                                        "server") == sid
            else:
                assert drained[sid] == {"server_id": sid, "status": "OK",
                                        "state": "Shutdown"}, drained[sid]
                assert (h["state"], h["match"]) == ("Shutdown", "")
        assert alloc.redis.zcard(alloc.key("ready:eu:race%d" % rnd)) == 0


def test_bad_input_is_refused_with_json(alloc):
    r = alloc.run("allocate", "--region", "eu", "--mode", "duel")
    assert r.rc == 1 and r.error["error"] == "USAGE"
    r = alloc.allocate("m1", "eu:x", "duel")
    assert r.rc == 1 and r.error["error"] == "BAD_ARG"
    r = alloc.run("allocate", "--region", "eu", "--mode", "d", "--match",
                  "m", "--colour", "red")
    assert r.rc == 1 and r.error["error"] == "USAGE"
    r = alloc.set_state("nobody", "Ready")
    assert r.rc == 3 and r.error["error"] == "NOT_FOUND"
    assert alloc.keys() == []


def test_bench_prints_two_parseable_lines_and_cleans_up(alloc):
    r = alloc.run("bench", "--servers", 8, "--requests", 400,
                  "--concurrency", 4)
    assert r.rc == 0, r
    rows = [l.split() for l in r.stdout.splitlines()]
    assert [row[0] for row in rows] == ["allocate", "evalsha_baseline"]
    for row in rows:
        assert len(row) == 3
        assert float(row[1]) > 0 and float(row[2]) > 0
    assert alloc.keys() == []
