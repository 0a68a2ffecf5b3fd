"""The matchmaking Redis scripts (ngx_modules/matchmaking/lua), run against
the real Redis of the test stack exactly as the module will: common.lua in
front of each script, the key prefix as ARGV[1]."""

import os
import threading
import time
import uuid

import pytest
import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA = os.path.join(ROOT, "ngx_modules", "matchmaking", "lua")


def script(name):
    with open(os.path.join(LUA, "common.lua")) as f:
        common = f.read()
    with open(os.path.join(LUA, name + ".lua")) as f:
        return common + "\n" + f.read()


@pytest.fixture
def mm(stack):
    r = redis.Redis(host="127.0.0.1", port=stack.redis_port,
                    decode_responses=True)
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    scripts = {n: r.register_script(script(n))
               for n in ("join", "cancel", "lease", "claim", "expire",
                         "status")}

    class MM:
        pass

    m = MM()
    m.r, m.p = r, prefix

    def call(name, *args):
        return scripts[name](args=[prefix] + [str(a) for a in args])

    m.call = call
    m.join = lambda t, players, q="duel:local", limit=1000, ttl=60000: \
        call("join", t, q, 1500, ttl, limit, *players)
    m.status = lambda t: r.hget(prefix + "ticket:" + t, "status")
    yield m
    for k in r.scan_iter(prefix + "*"):
        r.delete(k)


def test_join_queues_a_ticket_once_per_player(mm):
    assert mm.join("t1", ["p1"]) == ["OK", "t1", "1"]
    assert mm.status("t1") == "queued"
    assert mm.join("t2", ["p1"]) == ["ACTIVE", "t1"]
    assert mm.join("t3", ["p2", "p1"]) == ["ACTIVE", "t1"]
    assert mm.r.xlen(mm.p + "queue:duel:local") == 1


def test_party_ticket_holds_every_member(mm):
    assert mm.join("t1", ["a", "b", "c"], q="squad:local")[0] == "OK"
    assert mm.r.hget(mm.p + "ticket:t1", "size") == "3"
    assert mm.join("t2", ["b"], q="squad:local") == ["ACTIVE", "t1"]


def test_full_queue_refuses(mm):
    for i in range(3):
        assert mm.join("t%d" % i, ["p%d" % i], limit=3)[0] == "OK"
    assert mm.join("t9", ["p9"], limit=3) == ["FULL", "3"]
    assert mm.r.get(mm.p + "player:p9") is None


def test_cancel_frees_the_player(mm):
    mm.join("t1", ["p1"])
    assert mm.call("cancel", "p1") == ["OK", "t1"]
    assert mm.status("t1") == "cancelled"
    assert mm.call("cancel", "p1") == ["NONE"]
    st = mm.call("status", "p1")
    assert st[:2] == ["TICKET", "t1"]
    fields = dict(zip(st[2::2], st[3::2]))
    assert fields["status"] == "cancelled" and fields["queue"] == "duel:local"
    assert mm.join("t2", ["p1"])[0] == "OK"
    assert mm.call("status", "nobody") == ["NONE"]


def test_lease_has_one_holder_and_fences_the_old_one(mm):
    q = "duel:local"
    assert mm.call("lease", q, "w1", 200) == ["OK", "1", "new"]
    assert mm.call("lease", q, "w2", 200) == ["HELD", "w1"]
    assert mm.call("lease", q, "w1", 200) == ["OK", "1", "renewed"]
    time.sleep(0.3)
    assert mm.call("lease", q, "w2", 200) == ["OK", "2", "new"]

    mm.join("t1", ["p1"])
    mm.join("t2", ["p2"])
    # the lapsed holder's late write is refused
    assert mm.call("claim", q, "1", "m1", "t1", 0, "t2", 1) == ["FENCED"]
    assert mm.status("t1") == "queued"
    assert mm.call("claim", q, "2", "m1", "t1", 0, "t2", 1) == ["OK"]
    assert mm.r.hmget(mm.p + "ticket:t2", "status", "match", "team") == \
        ["matched", "m1", "1"]


def test_claim_is_all_or_nothing(mm):
    q = "duel:local"
    fence = mm.call("lease", q, "w", 5000)[1]
    for t in ("t1", "t2", "t3"):
        mm.join(t, ["p" + t])
    mm.call("cancel", "pt2")
    assert mm.call("claim", q, fence, "m1", "t1", 0, "t2", 1) == ["GONE", "t2"]
    assert mm.status("t1") == "queued"
    assert mm.call("claim", q, fence, "m1", "t1", 0, "t3", 1) == ["OK"]
    # a matched ticket can never be claimed again, nor cancelled
    assert mm.call("claim", q, fence, "m2", "t1", 0, "t3", 1)[0] == "GONE"
    assert mm.call("cancel", "pt1") == ["MATCHED", "t1"]
    assert mm.join("t9", ["pt1"]) == ["ACTIVE", "t1"]


def test_concurrent_claims_never_share_a_ticket(mm, stack):
    q = "duel:local"
    fence = mm.call("lease", q, "w", 60000)[1]
    n = 200
    for i in range(n):
        mm.join("t%d" % i, ["p%d" % i])

    won = []
    lock = threading.Lock()

    def matcher(seed):
        import random
        rnd = random.Random(seed)
        r = redis.Redis(host="127.0.0.1", port=stack.redis_port,
                        decode_responses=True)
        claim = r.register_script(script("claim"))
        for k in range(400):
            a, b = rnd.sample(range(n), 2)
            m = "m%d-%d" % (seed, k)
            res = claim(args=[mm.p, q, fence, m, "t%d" % a, 0, "t%d" % b, 1])
            if res == ["OK"]:
                with lock:
                    won.append((m, a, b))

    threads = [threading.Thread(target=matcher, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    used = [x for _, a, b in won for x in (a, b)]
    assert len(used) == len(set(used)), "a ticket was claimed twice"
    for m, a, b in won:
        assert mm.r.hget(mm.p + "ticket:t%d" % a, "match") == m
        assert mm.r.hget(mm.p + "ticket:t%d" % b, "match") == m


def test_expire_ends_waiting_tickets_and_trims_the_queue(mm):
    q = "duel:local"
    fence = mm.call("lease", q, "w", 5000)[1]
    mm.join("t1", ["p1"])
    mm.join("t2", ["p2"])
    last = mm.r.xrevrange(mm.p + "queue:" + q, count=1)[0][0]
    assert mm.call("expire", q, fence, last, "t1") == ["OK", "1"]
    assert mm.status("t1") == "expired"
    assert mm.status("t2") == "queued"
    # the player may queue again, and still reads how the last ticket ended
    assert mm.r.xlen(mm.p + "queue:" + q) == 1
    assert mm.call("status", "p1")[:2] == ["TICKET", "t1"]
    assert mm.join("t3", ["p1"])[0] == "OK"
    assert mm.call("expire", q, "999", last, "t2") == ["FENCED"]
