"""game-server, game-bot and game-fleet: real processes on loopback.

Each test runs its servers under its own allocator key prefix on the
stack's Redis, on UDP ports of this run's block (conftest.udp_ports: below
the ephemeral range, so that no client socket can hold one), and removes
its keys afterwards.
Tickets are ES256 JWTs signed here with python3-jwt (the backend's role)
or by game-bot --direct.  Protocol and results: gameserver/PROTOCOL.md.
"""

import base64
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import jwt
import pytest
import redis

from conftest import udp_ports

BUILD = os.path.join(os.path.dirname(__file__), "..", "..", "gameserver",
                     "build")
SERVER = os.path.abspath(os.path.join(BUILD, "game-server"))
BOT = os.path.abspath(os.path.join(BUILD, "game-bot"))
FLEET = os.path.abspath(os.path.join(BUILD, "game-fleet"))
ALLOC = os.path.abspath(os.path.join(BUILD, "game-allocate"))

_ports = iter(udp_ports(0, 180))


# the order of P-256's base point: (r, s) and (r, N - s) both verify, and
# the server takes only the low one (s <= N/2), as the backend signs
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def other_s(token, want_high):
    """The token with its signature's s as the high or the low spelling."""
    head, sig = token.rsplit(".", 1)
    raw = _b64d(sig)
    s = int.from_bytes(raw[32:], "big")
    if (s > P256_N // 2) != want_high:
        s = P256_N - s
    return head + "." + _b64e(raw[:32] + s.to_bytes(32, "big"))


def low_s(token):
    return other_s(token, False)


def json_lines(text):
    """The lines of a game-server's or game-fleet's output, as JSON: they
    write nothing else (a line that does not parse fails the test).  A last
    line without its newline is still being written: left for next time."""
    return [json.loads(l) for l in text.split("\n")[:-1]]


def events(lines, event, **fields):
    """The log lines of that event whose fields have those values."""
    return [l for l in lines if l.get("event") == event
            and "kind" not in l
            and all(l.get(k) == v for k, v in fields.items())]


def wait_for(pred, timeout, step=0.05):
    """Poll pred until truthy; return its value or fail after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs" % timeout)
        time.sleep(step)


@pytest.fixture(scope="module")
def keys():
    d = tempfile.mkdtemp(prefix="gs-keys.")
    out = {}
    for name in ("k1", "other"):
        priv = os.path.join(d, name + ".pem")
        pub = os.path.join(d, name + ".pub.pem")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1",
                        "-genkey", "-noout", "-out", priv], check=True)
        subprocess.run(["openssl", "ec", "-in", priv, "-pubout", "-out", pub],
                       check=True, capture_output=True)
        out[name] = (priv, pub, open(priv).read())
    yield out
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


class Env:
    """One test's world: a key prefix, its servers and bots."""

    def __init__(self, stack, keys):
        self.stack = stack
        self.keys = keys
        self.prefix = "gs%s:" % uuid.uuid4().hex[:10]
        self.redis_addr = "127.0.0.1:%d" % stack.redis_port
        self.r = redis.Redis(port=stack.redis_port, decode_responses=True)
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="gs-test.")

    # --- servers ---------------------------------------------------------

    def server(self, sid=None, wait=True, stdout=None, stderr=None, **opts):
        port = next(_ports)
        sid = sid or "srv-%d" % port
        args = [SERVER, "--id", sid, "--port", str(port),
                "--redis", self.redis_addr, "--prefix", self.prefix,
                "--ticket-key", "k1=" + self.keys["k1"][1],
                "--max-peers-per-ip", "64"]
        for k, v in opts.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        out = open(os.path.join(self.dir, sid + ".out"), "w")
        err = open(os.path.join(self.dir, sid + ".err"), "w")
        p = subprocess.Popen(args, stdout=out if stdout is None else stdout,
                             stderr=err if stderr is None else stderr)
        p.sid, p.port, p.outpath = sid, port, out.name
        self.procs.append(p)
        if wait:
            wait_for(lambda: self.state(sid) == "Ready", 5)
        return p

    def lines(self, p):
        with open(p.outpath) as f:
            return [json.loads(l) for l in f if l.startswith("{")]

    def events(self, p):
        return [l["event"] for l in self.lines(p)]

    def line(self, p, event):
        """The first lifecycle line of that event, or None."""
        return next((l for l in self.lines(p) if l["event"] == event), None)

    def log(self, p):
        with open(p.outpath[:-4] + ".err") as f:
            return f.read()

    def logs(self, p, event=None, **fields):
        """The server's log lines (stderr), all or of one event."""
        lines = json_lines(self.log(p))
        return lines if event is None else events(lines, event, **fields)

    def wait_logs(self, p, event, n=1, timeout=10, **fields):
        """The lines of one event once there are n of them: a thread of
        the server writes its log, a moment after the event."""
        return wait_for(lambda: len(self.logs(p, event, **fields)) >= n
                        and self.logs(p, event, **fields), timeout)

    def state(self, sid):
        return self.r.hget(self.prefix + "server:" + sid, "state")

    def alive(self, sid):
        return self.r.exists(self.prefix + "hb:" + sid) == 1

    def in_ready_index(self, sid, mode="dm", region="local"):
        return self.r.zscore("%sready:%s:%s" % (self.prefix, region, mode),
                             sid) is not None

    def drain(self, sid, verb="drain"):
        r = subprocess.run([ALLOC, "--redis", self.redis_addr, "--prefix",
                            self.prefix, verb, "--id", sid],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    # --- allocator and tickets -------------------------------------------

    def allocate(self, match, players=2, mode="dm", region="local"):
        r = subprocess.run([ALLOC, "--redis", self.redis_addr, "--prefix",
                            self.prefix, "allocate", "--region", region,
                            "--mode", mode, "--match", match, "--players",
                            str(players)], capture_output=True, text=True)
        return r.returncode, (json.loads(r.stdout) if r.returncode == 0
                              else r.stderr)

    def ticket(self, sub, match, server, exp_in=30, key="k1", kid="k1",
               **extra):
        claims = dict(sub=sub, match_id=match, server_id=server,
                      exp=int(time.time()) + exp_in, iat=int(time.time()),
                      jti=uuid.uuid4().hex, **extra)
        return low_s(jwt.encode(claims, self.keys[key][2], algorithm="ES256",
                                headers={"kid": kid}))

    def results(self):
        return [json.loads(fields["result"]) for _, fields in
                self.r.xrange(self.prefix + "results")]

    # --- bots -------------------------------------------------------------

    def bot_args(self, *args, **opts):
        a = [BOT] + list(args)
        for k, v in opts.items():
            a += ["--" + k.replace("_", "-"), str(v)]
        return a

    def bot(self, *args, timeout=30, **opts):
        r = subprocess.run(self.bot_args(*args, **opts), capture_output=True,
                           text=True, timeout=timeout)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        return r.returncode, (json.loads(lines[-1]) if lines else None), \
            r.stderr

    def direct(self, players=2, **opts):
        return self.bot("--direct", redis=self.redis_addr, prefix=self.prefix,
                        ticket_signing_key="k1=" + self.keys["k1"][0],
                        players=players, **opts)

    def raw_bot(self, p, ticket=None, **opts):
        extra = ["--no-ticket"] if ticket is None else []
        if ticket is not None:
            opts["ticket"] = ticket
        return self.bot(*extra, server="127.0.0.1:%d" % p.port, **opts)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        keys = list(self.r.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.r.delete(*keys)
        shutil.rmtree(self.dir, ignore_errors=True)


def postponed_scripts(r, ids_before):
    """Ids of the clients, new since ids_before, whose script waits out a
    CLIENT PAUSE WRITE: Redis runs them in this order when the pause ends.
    """
    return [c["id"] for c in r.client_list()
            if "b" in c["flags"] and c["cmd"] in ("eval", "evalsha")
            and c["id"] not in ids_before]


def warm_scripts(env):
    """allocate and drain in Redis' script cache: a NOSCRIPT would send
    them again after a pause, in another order."""
    for args in (["allocate", "--region", "none", "--mode", "dm",
                  "--match", "m-warm"], ["drain", "--id", "nobody"]):
        subprocess.run([ALLOC, "--redis", env.redis_addr, "--prefix",
                        env.prefix] + args, capture_output=True)


@pytest.fixture
def env(stack, keys):
    for b in (SERVER, BOT, FLEET, ALLOC):
        assert os.access(b, os.X_OK), "build gameserver first: make"
    e = Env(stack, keys)
    yield e
    e.close()


# --- registration and liveness -------------------------------------------

def test_server_registers_and_heartbeats(env):
    p = env.server(region="local", mode="dm", build="1.0")
    h = env.r.hgetall(env.prefix + "server:" + p.sid)
    assert (h["state"], h["port"], h["region"], h["mode"], h["build"]) == \
        ("Ready", str(p.port), "local", "dm", "1.0")
    assert h["capacity"] == "16"

    # the ttl is 3 s: 2.5 s later the key is still fresh, so it was renewed
    first = env.r.pttl(env.prefix + "hb:" + p.sid)
    time.sleep(2.5)
    assert env.alive(p.sid)
    assert env.r.pttl(env.prefix + "hb:" + p.sid) > 1000, first
    assert any(l["event"] == "listening" for l in env.lines(p))


def test_kill9_server_is_gone_from_the_allocator_within_3s(env):
    p = env.server()
    p.kill()
    p.wait()
    t0 = time.monotonic()
    wait_for(lambda: not env.alive(p.sid), 3.2)
    assert time.monotonic() - t0 <= 3.2
    rc, out = env.allocate("m-after-death")
    assert rc == 2 and "NO_SERVER" in out


# --- tickets ---------------------------------------------------------------

def test_bad_tickets_are_refused_within_a_second(env):
    p = env.server(join_timeout=30)
    rc, a = env.allocate("m-tix", players=4)
    assert rc == 0 and a["server_id"] == p.sid

    cases = {
        "no_ticket": None,
        "forged": env.ticket("u1", "m-tix", p.sid, key="other"),
        "unknown_kid": env.ticket("u1", "m-tix", p.sid, kid="nope"),
        "expired": env.ticket("u1", "m-tix", p.sid, exp_in=-60),
        "wrong_server": env.ticket("u1", "m-tix", "someone-else"),
        "wrong_match": env.ticket("u1", "m-other", p.sid),
        "garbage": "not.a.jwt",
    }
    expect = {"no_ticket": "no_ticket", "forged": "bad_ticket",
              "unknown_kid": "bad_ticket", "expired": "expired",
              "wrong_server": "wrong_server", "wrong_match": "wrong_match",
              "garbage": "bad_ticket"}
    for name, tok in cases.items():
        t0 = time.monotonic()
        rc, out, err = env.raw_bot(p, tok, duration=5)
        took = time.monotonic() - t0
        assert rc == 1, (name, out, err)
        assert out["bots"][0]["refused"] == expect[name], (name, out)
        assert out["bots"][0]["snapshots"] == 0, name
        # refused and disconnected within a second (plus process start)
        assert took < 1.6, (name, took)

    # a valid ticket gets in and plays; the same ticket again is refused
    good = env.ticket("u1", "m-tix", p.sid)
    rc, out, err = env.raw_bot(p, good, duration=1)
    assert rc == 0, (out, err)
    assert out["bots"][0]["snapshots"] > 0
    rc, out, err = env.raw_bot(p, good, duration=3)
    assert rc == 1 and out["bots"][0]["refused"] == "replayed", out


# --- the game ----------------------------------------------------------------

def test_full_match_publishes_exactly_one_result_and_server_is_reused(env):
    p = env.server(match_seconds=3)
    rc, out, err = env.direct(players=4, match="m-full", duration=10)
    assert rc == 0, (out, err)
    assert all(b["ok"] and b["snapshots"] > 40 and b["connect_ms"] < 2000
               and b["match_end"] == {"reason": "time"}
               and 0 <= b["rtt_ms"] < 100 for b in out["bots"]), out

    wait_for(lambda: env.results(), 3)
    res = env.results()
    assert len(res) == 1
    r = res[0]
    assert (r["match_id"], r["server_id"], r["reason"]) == \
        ("m-full", p.sid, "time")
    assert sorted(pl["id"] for pl in r["players"]) == \
        sorted(b["player"] for b in out["bots"])
    assert 2900 <= r["duration_ms"] <= 3500
    assert r["violations"] == {"speed": 0, "fire_rate": 0, "input_rate": 0,
                               "out_of_bounds": 0}
    assert r["flagged_players"] == 0 and r["malformed_packets"] == 0
    assert sum(pl["shots"] for pl in r["players"]) > 0
    assert r["tick"]["hz"] == 30 and r["tick"]["p99_us"] > 0
    assert env.r.exists(env.prefix + "result:m-full") == 1

    # back to Ready for the next match; the old match id is over
    wait_for(lambda: env.state(p.sid) == "Ready", 4)
    rc, _ = env.allocate("m-full")
    assert rc == 3
    rc, out, err = env.direct(players=2, match="m-full-2", duration=10)
    assert rc == 0, (out, err)
    wait_for(lambda: len(env.results()) == 2, 3)
    assert [r["match_id"] for r in env.results()] == ["m-full", "m-full-2"]


def test_cheaters_are_clamped_and_flagged(env):
    p = env.server(match_seconds=3)
    rc, out, err = env.direct(players=3, match="m-speed", cheat="speed",
                              cheaters=1, duration=10)
    assert rc == 0, (out, err)
    cheater, honest = out["bots"][0], out["bots"][1:]
    # the server moved the cheater at the allowed speed (10 units/s), no faster
    assert 9 < cheater["max_speed"] <= 10.05, cheater
    wait_for(lambda: env.results(), 3)
    r = {pl["id"]: pl for pl in env.results()[0]["players"]}
    assert r[cheater["player"]]["violations"]["speed"] > 50
    assert r[cheater["player"]]["flagged"] is True
    for b in honest:
        assert r[b["player"]]["violations"]["speed"] == 0
        assert r[b["player"]]["flagged"] is False

    wait_for(lambda: env.state(p.sid) == "Ready", 4)
    rc, out, err = env.direct(players=2, match="m-fire", cheat="firerate",
                              cheaters=1, duration=10)
    assert rc == 0, (out, err)
    wait_for(lambda: len(env.results()) == 2, 3)
    res = env.results()[1]
    r = {pl["id"]: pl for pl in res["players"]}
    cheat = r[out["bots"][0]["player"]]
    assert cheat["violations"]["fire_rate"] > 20 and cheat["flagged"]
    # 3 s at one shot per 200 ms at most, although it asked ~90 times
    assert cheat["shots"] <= 3000 / 200 + 2, cheat
    assert r[out["bots"][1]["player"]]["violations"]["fire_rate"] == 0
    assert res["flagged_players"] == 1


def test_malformed_packets_are_dropped_and_counted(env):
    p = env.server(match_seconds=3)
    # raw UDP garbage and truncated datagrams, before anyone connects
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rnd = random.Random(7)
    for n in list(range(0, 40)) + [200, 1400, 4000, 60000]:
        s.sendto(bytes(rnd.getrandbits(8) for _ in range(n)),
                 ("127.0.0.1", p.port))
    s.close()
    assert p.poll() is None

    # application-level garbage from joined clients: truncated, padded,
    # unknown type, wrong channel, bad fields
    rc, out, err = env.direct(players=2, match="m-fuzz", fuzz=14, duration=10)
    assert rc == 0, (out, err)
    assert all(b["fuzz_sent"] == 14 for b in out["bots"])
    wait_for(lambda: env.results(), 3)
    res = env.results()[0]
    assert res["malformed_packets"] == 28, res
    assert p.poll() is None and env.alive(p.sid)


# --- lifecycle ---------------------------------------------------------------

def test_sigterm_drains_idle_server(env):
    p = env.server()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=5) == 0
    assert not env.r.exists(env.prefix + "server:" + p.sid)
    assert not env.alive(p.sid)


def test_sigterm_during_a_match_ends_it_then_deregisters(env):
    p = env.server(match_seconds=60, drain_grace=1)
    bots = subprocess.Popen(
        env.bot_args("--direct", redis=env.redis_addr, prefix=env.prefix,
                     ticket_signing_key="k1=" + env.keys["k1"][0],
                     players=2, match="m-drain", duration=15),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: env.state(p.sid) == "Playing", 5)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=6) == 0
    out, _ = bots.communicate(timeout=10)
    summary = json.loads(out.splitlines()[-1])
    assert all(b["match_end"] == {"reason": "drain"}
               for b in summary["bots"]), summary
    res = env.results()
    assert len(res) == 1 and res[0]["reason"] == "drain"
    assert not env.r.exists(env.prefix + "server:" + p.sid)


def test_join_timeout_aborts_duel_and_starts_dm(env):
    p = env.server(mode="duel", join_timeout=1, match_seconds=2)
    rc, a = env.allocate("m-duel", players=2, mode="duel")
    assert rc == 0
    rc, out, err = env.raw_bot(p, env.ticket("solo", "m-duel", p.sid),
                               duration=5)
    wait_for(lambda: env.results(), 4)
    assert env.results()[0]["reason"] == "abort"
    assert out["bots"][0]["match_end"] == {"reason": "abort"}

    q = env.server(mode="dm", join_timeout=1, match_seconds=1)
    rc, a = env.allocate("m-dm", players=3, mode="dm")
    assert rc == 0 and a["server_id"] == q.sid
    rc, out, err = env.raw_bot(q, env.ticket("solo", "m-dm", q.sid),
                               duration=6)
    assert rc == 0, (out, err)
    wait_for(lambda: len(env.results()) == 2, 4)
    assert env.results()[1]["reason"] == "time"


def test_lifecycle_lines_are_json_with_server_id_and_time(env):
    p = env.server(match_seconds=1)
    t0 = int(time.time() * 1000)
    rc, out, err = env.direct(players=2, match="m-lines", duration=8)
    assert rc == 0, (out, err)
    wait_for(lambda: "ready" in env.events(p), 4)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=5) == 0

    lines = env.lines(p)
    assert [l["event"] for l in lines] == [
        "listening", "allocated", "join", "join", "match_start",
        "match_end", "ready", "draining", "exit"], lines
    for l in lines:
        assert l["server_id"] == p.sid
        assert t0 - 10000 <= l["ts_ms"] <= int(time.time() * 1000)
    assert [l["ts_ms"] for l in lines] == sorted(l["ts_ms"] for l in lines)
    by = {l["event"]: l for l in lines}
    assert by["allocated"]["match_id"] == "m-lines"
    assert by["allocated"]["players"] == 2
    assert by["match_start"]["players"] == 2
    assert sorted(by["match_start"]["seated"]) == \
        sorted(b["player"] for b in out["bots"])
    assert by["match_end"]["result"]["match_id"] == "m-lines"
    assert by["draining"]["reason"] == "signal"
    assert by["exit"]["matches"] == 1


# --- the allocator's view of a match ------------------------------------------

def test_match_record_tells_who_was_seated(env):
    p = env.server(join_timeout=2, match_seconds=1)
    rc, a = env.allocate("m-seats", players=3)
    assert rc == 0 and a["server_id"] == p.sid
    # two of the three come; the join timeout starts the match without the
    # third (dm starts with whoever came)
    rc, out, err = env.bot(server="127.0.0.1:%d" % p.port,
                           server_id=p.sid, match="m-seats",
                           ticket_signing_key="k1=" + env.keys["k1"][0],
                           players=2, duration=8)
    assert rc == 0, (out, err)
    came = sorted(b["player"] for b in out["bots"])

    rec = env.r.hgetall(env.prefix + "match:m-seats")
    assert rec["server"] == p.sid
    assert sorted(rec["seated"].split(",")) == came
    start = env.line(p, "match_start")
    assert sorted(start["seated"]) == came
    # Redis' clock and the server's are this machine's: started lies
    # between the allocation and now
    assert env.line(p, "allocated")["ts_ms"] <= int(rec["started"]) \
        <= int(time.time() * 1000)


def test_busy_server_never_offers_itself_again_while_it_waits(env):
    """While a server waits for its players, the allocator loses its
    heartbeat key, then its whole record: the server must neither go back
    into a Ready index nor take a second match before this one ended."""
    p = env.server(join_timeout=5, match_seconds=1)
    rc, a = env.allocate("m-held", players=2)
    assert rc == 0
    wait_for(lambda: env.line(p, "allocated"), 3)

    def never_offered(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert not env.in_ready_index(p.sid)
            assert env.state(p.sid) in (None, "Allocated")
            time.sleep(0.05)

    # the key lapses (Redis out of reach > ttl): the server resumes
    env.r.delete(env.prefix + "hb:" + p.sid)
    never_offered(2.5)
    assert env.alive(p.sid)
    assert env.r.hget(env.prefix + "server:" + p.sid, "match") == "m-held"
    rc, out = env.allocate("m-second")
    assert rc == 2 and "NO_SERVER" in out

    # Redis lost everything of ours (a restart without persistence)
    keys = list(env.r.scan_iter(match=env.prefix + "*"))
    env.r.delete(*keys)
    while env.line(p, "match_end") is None:
        never_offered(0.2)
        rc, out = env.allocate("m-third")
        assert rc == 2 and "NO_SERVER" in out
    assert "allocated" not in env.events(p)[2:]

    # once its match is over it registers again, and serves the next one
    wait_for(lambda: env.state(p.sid) == "Ready" and env.alive(p.sid), 5)
    rc, a = env.allocate("m-next")
    assert rc == 0 and a["server_id"] == p.sid
    assert len(env.wait_logs(p, "server_ready", n=2, via="register")) == 2


def test_a_hung_tick_loop_stops_the_heartbeat(env):
    """The loop blocks writing a lifecycle line to a full pipe, while the
    allocator thread runs on: the server must go dead in the allocator,
    and come back once the loop runs again."""
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)              # F_SETPIPE_SZ: one page
    os.set_blocking(w, False)
    for chunk in (4096, 1):
        try:
            while True:
                os.write(w, b"x" * chunk)
        except BlockingIOError:
            pass
    os.set_blocking(w, True)
    try:
        p = env.server(stdout=w, wait=False)
    finally:
        os.close(w)
    wait_for(lambda: env.state(p.sid) == "Ready" and env.alive(p.sid), 5)
    # no tick for 2 s: no heartbeat; 3 s later the key is gone
    wait_for(lambda: not env.alive(p.sid), 10)
    assert p.poll() is None
    (stalled,) = env.wait_logs(p, "tick_loop_stalled")
    assert stalled["level"] == "error" and stalled["silent_ms"] > 2000
    rc, out = env.allocate("m-hung")
    assert rc == 2 and "NO_SERVER" in out

    reader = threading.Thread(
        target=lambda: [None for _ in iter(lambda: os.read(r, 65536), b"")],
        daemon=True)
    reader.start()
    wait_for(lambda: env.state(p.sid) == "Ready" and env.alive(p.sid), 10)
    assert env.wait_logs(p, "tick_loop_resumed")
    p.kill()
    p.wait()
    reader.join(timeout=5)
    os.close(r)


# --- drains ------------------------------------------------------------------

def test_a_drained_idle_server_exits_at_once(env):
    p = env.server()
    assert env.drain(p.sid) == {"server_id": p.sid, "status": "OK",
                                "state": "Shutdown"}
    assert p.wait(timeout=5) == 0
    assert env.events(p)[-2:] == ["drained", "exit"]
    assert not env.r.exists(env.prefix + "server:" + p.sid)


def test_a_server_drained_while_busy_finishes_its_match_then_exits(env):
    p = env.server(match_seconds=3)
    bots = subprocess.Popen(
        env.bot_args("--direct", redis=env.redis_addr, prefix=env.prefix,
                     ticket_signing_key="k1=" + env.keys["k1"][0],
                     players=2, match="m-busy-drain", duration=10),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: env.state(p.sid) == "Playing", 5)
    d = env.drain(p.sid, verb="cordon")
    assert d["status"] == "BUSY" and d["state"] == "Playing"

    # it is never offered again, whenever its heartbeat brings the news
    end = time.monotonic() + 15
    while p.poll() is None and time.monotonic() < end:
        assert not env.in_ready_index(p.sid)
        assert env.state(p.sid) in ("Playing", "Finished", "Shutdown", None)
        time.sleep(0.05)
    assert p.wait(timeout=10) == 0
    out, _ = bots.communicate(timeout=10)
    summary = json.loads(out.splitlines()[-1])
    # the match ran its full time, the drain cut nothing short
    assert all(b["match_end"] == {"reason": "time"}
               for b in summary["bots"]), summary
    res = env.results()
    assert len(res) == 1 and res[0]["reason"] == "time"
    ev = env.events(p)
    assert ev[-2:] == ["drained", "exit"], ev
    assert env.line(p, "draining")["reason"] == "allocator"
    assert not env.r.exists(env.prefix + "server:" + p.sid)


def test_sigterm_racing_an_allocation_has_one_outcome(env):
    """An idle server gets SIGTERM just as it is allocated.  Redis holds
    scripts (CLIENT PAUSE WRITE) while the allocation and then the
    server's way out queue up, so the allocation wins every time: the
    server must play that match (nobody comes here: aborted at the join
    timeout) and leave afterwards, instead of releasing it by leaving."""
    p = env.server(join_timeout=1)
    warm_scripts(env)
    before = {c["id"] for c in env.r.client_list()}
    env.r.client_pause(5000, all=False)
    try:
        alloc = subprocess.Popen(
            [ALLOC, "--redis", env.redis_addr, "--prefix", env.prefix,
             "--timeout", "10000", "allocate", "--region", "local",
             "--mode", "dm", "--match", "m-sigterm", "--players", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(postponed_scripts(env.r, before)) == 1, 4,
                 step=0.005)
        p.send_signal(signal.SIGTERM)
        wait_for(lambda: len(postponed_scripts(env.r, before)) == 2, 4,
                 step=0.005)
    finally:
        env.r.client_unpause()
    out, err = alloc.communicate(timeout=10)
    assert alloc.returncode == 0 and json.loads(out)["server_id"] == p.sid

    assert p.wait(timeout=10) == 0
    assert env.events(p) == ["listening", "draining", "allocated",
                             "match_end", "exit"], env.lines(p)
    assert env.results()[0]["match_id"] == "m-sigterm"
    assert not env.r.exists(env.prefix + "server:" + p.sid)


def test_sigterm_during_a_match_lets_it_end_by_its_rules(env):
    # no --drain-grace: it defaults to one match (join + match + 10 s)
    p = env.server(match_seconds=3, join_timeout=4)
    bots = subprocess.Popen(
        env.bot_args("--direct", redis=env.redis_addr, prefix=env.prefix,
                     ticket_signing_key="k1=" + env.keys["k1"][0],
                     players=2, match="m-term", duration=10),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: env.state(p.sid) == "Playing", 5)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0
    out, _ = bots.communicate(timeout=10)
    summary = json.loads(out.splitlines()[-1])
    assert all(b["match_end"] == {"reason": "time"}
               for b in summary["bots"]), summary
    assert env.line(p, "draining")["grace_s"] == 4 + 3 + 10
    assert env.results()[0]["reason"] == "time"
    assert not env.r.exists(env.prefix + "server:" + p.sid)


# --- fleet -------------------------------------------------------------------

def test_fleet_keeps_its_buffer(env):
    conf = os.path.join(env.dir, "fleet.conf")
    status = os.path.join(env.dir, "fleet.status")
    with open(conf, "w") as f:
        f.write("redis %s\nprefix %s\nserver %s\nstatus %s\nreap 1\n"
                "server-arg --ticket-key\nserver-arg k1=%s\n"
                "server-arg --join-timeout\nserver-arg 2\n"
                "server-arg --match-seconds\nserver-arg 3\n"
                "region tr min 1 max 4 buffer 2 ports 21950-21959\n"
                % (env.redis_addr, env.prefix, SERVER, status,
                   env.keys["k1"][1]))
    log = open(os.path.join(env.dir, "fleet.err"), "w")
    fleet = subprocess.Popen([FLEET, "-c", conf, "run"], stderr=log,
                             stdout=log)
    env.procs.append(fleet)

    def servers():
        try:
            with open(status) as f:
                return [json.loads(l) for l in f]
        except FileNotFoundError:
            return []

    def ready():
        return [s for s in servers()
                if s["state"] == "Ready" and env.alive(s["id"])]

    wait_for(lambda: len(ready()) == 2, 8)
    assert len(servers()) == 2

    # a crash: the fleet replaces it
    victim = ready()[0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: len(ready()) == 2
             and victim["id"] not in [s["id"] for s in ready()], 8)

    # an allocation: the buffer is kept on top of the busy server
    rc, a = env.allocate("m-fleet", players=2, region="tr")
    assert rc == 0
    wait_for(lambda: len(ready()) == 2 and len(servers()) == 3, 8)

    st = subprocess.run([FLEET, "-c", conf, "status"], capture_output=True,
                        text=True)
    assert st.returncode == 0 and a["server_id"] in st.stdout
    assert "Allocated" in st.stdout

    fleet.send_signal(signal.SIGTERM)
    assert fleet.wait(timeout=15) == 0
    assert servers() == []
    listed = subprocess.run([ALLOC, "--redis", env.redis_addr, "--prefix",
                             env.prefix, "list"], capture_output=True,
                            text=True).stdout
    assert all(not json.loads(l)["alive"] or json.loads(l)["state"]
               == "Shutdown" for l in listed.splitlines())
