"""The matchmaking Redis scripts (ngx_modules/matchmaking/lua), run against
the real Redis of the test stack exactly as the module runs them: the text
gen_lua.sh makes (common.lua in front, and for match.lua the allocator's
prelude), the key prefix as ARGV[1]."""

import os
import sys
import threading
import time
import uuid

import pytest
import redis

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "scripts"))
from game_lua import alloc_script, mm_script  # noqa: E402

QUEUE = "duel:local"

script = mm_script


@pytest.fixture
def mm(stack):
    r = redis.Redis(host="127.0.0.1", port=stack.redis_port,
                    decode_responses=True)
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    ap = "a%s:" % uuid.uuid4().hex[:8]
    scripts = {n: r.register_script(script(n))
               for n in ("join", "cancel", "lease", "read", "match", "expire",
                         "finish", "status")}
    register = r.register_script(alloc_script("register"))

    class MM:
        pass

    m = MM()
    m.r, m.p, m.ap = r, prefix, ap

    def call(name, *args):
        return scripts[name](args=[prefix] + [str(a) for a in args])

    def server(sid):
        """A Ready server in the allocator, alive for a minute."""
        assert register(keys=[ap + "server:" + sid, ap + "hb:" + sid],
                        args=[ap, sid, "tok", "127.0.0.1", 7000, "local",
                              "duel", "", "h1", 0, "Ready", 60000])[0] == "OK"

    def match(fence, mid, *tickets):
        pairs = []
        for i, t in enumerate(tickets):
            pairs += [t, i % 2]
        return call("match", QUEUE, fence, mid, ap, "local", "duel", "",
                    len(tickets), "[]", 600000, *pairs)

    m.call, m.server, m.match = call, server, match
    m.join = lambda t, players, q=QUEUE, limit=1000, ttl=60000, joins=30: \
        call("join", t, q, 1500, ttl, limit, 120000, joins, 60000, *players)
    m.status = lambda t: r.hget(prefix + "ticket:" + t, "status")
    m.state = lambda sid: r.hget(ap + "server:" + sid, "state")
    yield m
    for p in (prefix, ap):
        for k in r.scan_iter(p + "*"):
            r.delete(k)


def test_join_queues_a_ticket_once_per_player(mm):
    assert mm.join("t1", ["p1"]) == ["OK", "t1", "1"]
    assert mm.status("t1") == "queued"
    assert mm.join("t2", ["p1"]) == ["ACTIVE", "t1"]
    assert mm.join("t3", ["p2", "p1"]) == ["ACTIVE", "t1"]
    assert mm.r.xlen(mm.p + "queue:" + QUEUE) == 1


def test_party_ticket_holds_every_member(mm):
    assert mm.join("t1", ["a", "b", "c"], q="squad:local")[0] == "OK"
    assert mm.r.hget(mm.p + "ticket:t1", "size") == "3"
    assert mm.join("t2", ["b"], q="squad:local") == ["ACTIVE", "t1"]


def test_full_queue_counts_live_tickets(mm):
    for i in range(3):
        assert mm.join("t%d" % i, ["p%d" % i], limit=3)[0] == "OK"
    assert mm.join("t9", ["p9"], limit=3) == ["FULL", "3"]
    assert mm.r.get(mm.p + "player:p9") is None
    # a cancelled ticket no longer counts, although its entry stays
    assert mm.call("cancel", "p0") == ["OK", "t0"]
    assert mm.join("t9", ["p9"], limit=3)[0] == "OK"


def test_joins_per_player_are_limited(mm):
    for i in range(3):
        assert mm.join("t%d" % i, ["p1"], joins=3)[0] == "OK"
        assert mm.call("cancel", "p1")[0] == "OK"
    verdict, wait = mm.join("t9", ["p1"], joins=3)
    assert verdict == "LIMITED" and 0 < int(wait) <= 60000
    # a join refused because a ticket is in play does not count
    assert mm.join("u1", ["p2"], joins=1)[0] == "OK"
    assert mm.join("u2", ["p2"], joins=1) == ["ACTIVE", "u1"]


def test_cancel_frees_the_player_and_tells_the_matcher(mm):
    mm.join("t1", ["p1"])
    assert mm.call("cancel", "p1") == ["OK", "t1"]
    assert mm.status("t1") == "cancelled"
    assert mm.call("cancel", "p1") == ["NONE"]
    st = mm.call("status", "p1")
    assert st[:2] == ["TICKET", "t1"]
    fields = dict(zip(st[2::2], st[3::2]))
    assert fields["status"] == "cancelled" and fields["queue"] == QUEUE
    assert fields["reason"] == "player"
    assert mm.join("t2", ["p1"])[0] == "OK"
    assert mm.call("status", "nobody") == ["NONE"]

    # the matcher reads live tickets only, and hears of the cancellation
    last, live, gone, n = mm.call("read", QUEUE, "-", 100)
    assert live[0::5] == ["t2"] and gone == ["t1"] and n == 3
    assert mm.call("read", QUEUE, "(" + last, 100) == ["", [], [], 0]
    # a call reads at most "count" entries
    assert mm.call("read", QUEUE, "-", 2)[3] == 2


def test_lease_has_one_holder_and_fences_the_old_one(mm):
    assert mm.call("lease", QUEUE, "w1", 200) == ["OK", "1", "new"]
    assert mm.call("lease", QUEUE, "w2", 200) == ["HELD", "w1"]
    assert mm.call("lease", QUEUE, "w1", 200) == ["OK", "1", "renewed"]
    time.sleep(0.3)
    assert mm.call("lease", QUEUE, "w2", 200) == ["OK", "2", "new"]

    mm.server("s1")
    mm.join("t1", ["p1"])
    mm.join("t2", ["p2"])
    # the lapsed holder's late write is refused, and allocates nothing
    assert mm.match("1", "m1", "t1", "t2") == ["FENCED"]
    assert mm.status("t1") == "queued" and mm.state("s1") == "Ready"
    assert mm.match("2", "m1", "t1", "t2") == \
        ["OK", "s1", "127.0.0.1", "7000", "0"]
    assert mm.r.hmget(mm.p + "ticket:t2", "status", "match", "team",
                      "server_id") == ["matched", "m1", "1", "s1"]
    assert mm.state("s1") == "Allocated"


def test_match_is_all_or_nothing_and_allocates_only_for_live_tickets(mm):
    fence = mm.call("lease", QUEUE, "w", 5000)[1]
    for t in ("t1", "t2", "t3"):
        mm.join(t, ["p" + t])

    # no server: nothing changes
    assert mm.match(fence, "m0", "t1", "t2") == ["NO_SERVER"]
    assert mm.status("t1") == "queued" and mm.status("t2") == "queued"

    mm.server("s1")
    mm.call("cancel", "pt2")
    assert mm.match(fence, "m1", "t1", "t2") == ["GONE", "t2"]
    assert mm.status("t1") == "queued"
    assert mm.state("s1") == "Ready", "a server was taken for a cancelled ticket"

    assert mm.match(fence, "m1", "t1", "t3")[0] == "OK"
    # the same match id again (its reply was lost): the same server
    assert mm.match(fence, "m1", "t1", "t3") == \
        ["OK", "s1", "127.0.0.1", "7000", "1"]
    # a matched ticket can never be matched again, nor cancelled
    mm.server("s2")
    assert mm.match(fence, "m2", "t1", "t3")[0] == "GONE"
    assert mm.state("s2") == "Ready"
    assert mm.call("cancel", "pt1") == ["MATCHED", "t1"]
    assert mm.join("t9", ["pt1"]) == ["ACTIVE", "t1"]
    assert mm.r.zrange(mm.p + "active:" + QUEUE, 0, -1) == ["m1"]


def test_finish_ends_every_ticket_of_the_match(mm):
    fence = mm.call("lease", QUEUE, "w", 5000)[1]
    for i in range(4):
        mm.join("t%d" % i, ["p%d" % i])
    mm.server("s1")
    mm.server("s2")
    assert mm.match(fence, "m1", "t0", "t1")[0] == "OK"
    assert mm.match(fence, "m2", "t2", "t3")[0] == "OK"

    # p1 never came to the match that was played; the reply names the
    # tickets it ended, whose players are told
    assert mm.call("finish", "m1", "finished", "p0") == ["OK", "2",
                                                         ["t0", "t1"]]
    assert mm.r.hmget(mm.p + "ticket:t0", "status", "reason") == \
        ["finished", ""]
    assert mm.r.hmget(mm.p + "ticket:t1", "status", "reason") == \
        ["failed", "no_show"]
    # p2 came, p3 did not, and the server aborted
    assert mm.call("finish", "m2", "aborted", "p2") == ["OK", "2",
                                                        ["t2", "t3"]]
    assert mm.r.hmget(mm.p + "ticket:t2", "status", "reason") == \
        ["failed", "aborted"]
    assert mm.r.hmget(mm.p + "ticket:t3", "status", "reason") == \
        ["failed", "no_show"]
    # idempotent, and a player who queued again keeps the new ticket
    mm.join("t9", ["p0"])
    assert mm.call("finish", "m1", "finished", "p0") == ["OK", "0", []]
    assert mm.status("t9") == "queued"
    assert mm.r.zcard(mm.p + "active:" + QUEUE) == 0


def test_concurrent_matchers_never_share_a_ticket_or_a_server(mm, stack):
    fence = mm.call("lease", QUEUE, "w", 60000)[1]
    n = 200
    for i in range(n):
        mm.join("t%d" % i, ["p%d" % i])
    for i in range(60):
        mm.server("s%d" % i)

    won = []
    lock = threading.Lock()

    def matcher(seed):
        import random
        rnd = random.Random(seed)
        r = redis.Redis(host="127.0.0.1", port=stack.redis_port,
                        decode_responses=True)
        match = r.register_script(script("match"))
        for k in range(400):
            a, b = rnd.sample(range(n), 2)
            m = "m%d-%d" % (seed, k)
            res = match(args=[mm.p, QUEUE, fence, m, mm.ap, "local", "duel",
                              "", 2, "[]", 600000, "t%d" % a, 0, "t%d" % b,
                              1])
            if res[0] == "OK":
                with lock:
                    won.append((m, a, b, res[1]))

    threads = [threading.Thread(target=matcher, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    used = [x for _, a, b, _ in won for x in (a, b)]
    assert len(used) == len(set(used)), "a ticket was matched twice"
    servers = [s for _, _, _, s in won]
    assert len(servers) == len(set(servers)), "a server got two matches"
    assert len(won) == 60       # every server, once
    for m, a, b, s in won:
        assert mm.r.hget(mm.p + "ticket:t%d" % a, "match") == m
        assert mm.r.hget(mm.p + "ticket:t%d" % b, "match") == m
        assert mm.r.hget(mm.ap + "server:" + s, "match") == m


def test_expire_ends_waiting_tickets_and_trims_the_queue(mm):
    fence = mm.call("lease", QUEUE, "w", 5000)[1]
    mm.join("t1", ["p1"])
    mm.join("t2", ["p2"])
    last = mm.r.xrevrange(mm.p + "queue:" + QUEUE, count=1)[0][0]
    assert mm.call("expire", QUEUE, fence, last, "t1") == ["OK", "1", ["t1"]]
    assert mm.status("t1") == "expired"
    assert mm.status("t2") == "queued"
    assert mm.r.zrange(mm.p + "live:" + QUEUE, 0, -1) == ["t2"]
    # the player may queue again, and still reads how the last ticket ended
    assert mm.r.xlen(mm.p + "queue:" + QUEUE) == 1
    assert mm.call("status", "p1")[:2] == ["TICKET", "t1"]
    assert mm.join("t3", ["p1"])[0] == "OK"
    assert mm.call("expire", QUEUE, "999", last, "t2") == ["FENCED"]
