"""game-server on a hostile network: floods of connects and hellos, a
stderr nobody reads, dropped players coming back, replays.

The attackers are real datagrams on loopback from other addresses of
127.0.0.0/8 (Linux routes the whole block to lo): raw ENet CONNECTs that
never finish the handshake (what a spoofed source can do), and game-bot
peers that connect and never say hello, or say hello with a forged
ticket.  The honest player always comes from 127.0.0.1.
"""

import fcntl
import os
import random
import socket
import struct
import subprocess
import threading
import time

from test_gameserver import (BOT, env, events, json_lines,  # noqa: F401
                             keys, other_s, wait_for)


def enet_connect_datagram():
    """An ENet CONNECT as a client's first datagram: the header (peer id
    0xFFF: nobody yet, with a sent time), then the command."""
    header = struct.pack("!HH", 0x8000 | 0x0FFF, random.randrange(65536))
    command = struct.pack(
        "!BBH HBB IIIIIIIIII",
        2 | 0x80, 0xFF, 1,                  # CONNECT, acknowledge, seq 1
        0, 0xFF, 0xFF,                      # our peer id, session ids
        1392, 32768, 2,                     # mtu, window, channels
        0, 0, 5000, 2, 2,                   # bandwidth, throttle
        random.randrange(1 << 32), 0)       # connect id, data
    return header + command


class Flood:
    """Raw CONNECTs from `sources`, as fast as one thread sends them, and
    hello-less (or forged-hello) game-bot peers from `bot_sources`, until
    stopped."""

    def __init__(self, port, sources=(), bot_sources=(), ticket=None):
        self.port = port
        self.stop = threading.Event()
        self.sent = 0
        self.socks = []
        for src in sources:
            for _ in range(8):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((src, 0))
                s.setblocking(False)
                self.socks.append(s)
        self.threads = [threading.Thread(target=self._raw, daemon=True)]
        for src in bot_sources:
            self.threads.append(threading.Thread(
                target=self._bots, args=(src, ticket), daemon=True))

    def _raw(self):
        i = 0
        while self.socks and not self.stop.is_set():
            try:
                self.socks[i % len(self.socks)].sendto(
                    enet_connect_datagram(), ("127.0.0.1", self.port))
                self.sent += 1
            except (BlockingIOError, OSError):
                pass
            i += 1
            if i % 64 == 0:
                time.sleep(0.001)

    def _bots(self, src, ticket):
        args = [BOT, "--server", "127.0.0.1:%d" % self.port, "--players",
                "8", "--bind", src, "--duration", "2", "--connect-timeout",
                "2"]
        args += ["--ticket", ticket] if ticket else ["--no-ticket"]
        while not self.stop.is_set():
            subprocess.run(args, capture_output=True, timeout=30)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=40)
        for s in self.socks:
            s.close()


def honest_join(env, p, player, match, tries=3, duration=4):
    """A ticket holder connects as a real client would: a fresh ticket per
    try (a retry reads the status again), a few tries."""
    out = err = None
    for _ in range(tries):
        rc, out, err = env.raw_bot(p, env.ticket(player, match, p.sid),
                                   duration=duration, connect_timeout=3)
        if out and out["bots"][0]["snapshots"] > 0:
            return out
    raise AssertionError("the ticket holder stayed out: %r %s" % (out, err))


def test_a_flood_of_connects_and_hello_less_peers_keeps_no_ticket_holder_out(
        env):
    """Eight addresses fill every peer with half-open connections (ENet
    gives one to each CONNECT and keeps it 5-30 s), four more keep
    hello-less peers connected: the match's players still get in."""
    p = env.server(max_players=4, max_peers_per_ip=8, match_seconds=3,
                   join_timeout=30)
    rc, a = env.allocate("m-flood", players=2)
    assert rc == 0 and a["server_id"] == p.sid

    with Flood(p.port, ["127.0.0.%d" % i for i in range(2, 10)],
               ["127.0.0.%d" % i for i in range(10, 14)]) as flood:
        time.sleep(1.5)                 # the flood has filled the pool
        players = [threading.Thread(target=honest_join,
                                    args=(env, p, name, "m-flood"))
                   for name in ("alice", "bob")]
        for t in players:
            t.start()
        for t in players:
            t.join()
    assert flood.sent > 1000

    wait_for(lambda: env.results(), 10)
    r = env.results()[0]
    assert sorted(pl["id"] for pl in r["players"]) == ["alice", "bob"]
    g = r["guard"]
    assert g["connects_dropped"] > 0 and g["evicted"] > 0, g


def test_a_hello_flood_is_bounded_per_source_and_the_log_never_blocks(env):
    """Forged tickets with a known kid cost an ECDSA verify each, and each
    refusal used to write a log line: with stderr a full pipe nobody
    reads, one line stopped the tick loop.  Now the log drops what it
    cannot write, sources are refused past their share of verifies, and
    the ticket holder plays."""
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)              # F_SETPIPE_SZ: one page
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 512)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    try:
        p = env.server(stderr=w, wait=False, max_players=4,
                       max_peers_per_ip=8, match_seconds=2, join_timeout=30)
    finally:
        os.close(w)
    try:
        wait_for(lambda: env.state(p.sid) == "Ready", 5)
        rc, a = env.allocate("m-hello", players=1)
        assert rc == 0 and a["server_id"] == p.sid

        forged = env.ticket("mallory", "m-hello", p.sid, key="other")
        with Flood(p.port, bot_sources=["127.0.0.%d" % i
                                        for i in range(20, 24)],
                   ticket=forged):
            time.sleep(3)
            honest_join(env, p, "alice", "m-hello")

        wait_for(lambda: env.results(), 10)
        res = env.results()[0]
        assert [pl["id"] for pl in res["players"]] == ["alice"]
        g = res["guard"]
        assert g["verifies_refused"] > 0, g
        assert res["refused"]["bad_ticket"] > 0
        assert res["refused"]["busy"] > 0

        # the refusals were told a few lines a second, not one each
        told = [l for l in env.lines(p) if l["event"] == "refused"]
        assert sum(l["untold"] for l in told) > len(told), told

        # read at last, the log gives what it kept: whole JSON lines
        got = bytearray()
        reader = threading.Thread(target=lambda: [
            got.extend(b) for b in iter(lambda: os.read(r, 65536), b"")],
            daemon=True)
        reader.start()
        wait_for(lambda: got.count(b"\n") > 10, 10)
        time.sleep(0.5)
        p.kill()
        p.wait()
        reader.join(timeout=10)
        lines = json_lines(got.decode().lstrip("x"))
        assert all(l["service"] == "game-server" and l["server"] == p.sid
                   for l in lines)
        refused = events(lines, "player_refused")
        assert refused and all(isinstance(l["untold"], int)
                               for l in refused), lines
    finally:
        p.kill()
        p.wait()
        os.close(r)


def test_a_dropped_player_rejoins_with_a_fresh_ticket_and_replays_fail(env):
    """The player's process dies: ENet on the server thinks it is still
    there for seconds.  A fresh ticket (the backend signs one per status
    read) takes the seat back at once, with the score; the old ticket and
    the fresh one are both spent."""
    p = env.server(match_seconds=30, join_timeout=30)
    rc, a = env.allocate("m-back", players=2)
    assert rc == 0

    first = env.ticket("alice", "m-back", p.sid)
    bot = subprocess.Popen(env.bot_args("--server", "127.0.0.1:%d" % p.port,
                                        ticket=first, duration=30),
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    wait_for(lambda: env.line(p, "join"), 5)
    bot.kill()
    bot.wait()

    fresh = env.ticket("alice", "m-back", p.sid)
    rc, out, err = env.raw_bot(p, fresh, duration=1)
    assert rc == 0 and out["bots"][0]["snapshots"] > 0, (out, err)
    joins = [l for l in env.lines(p) if l["event"] == "join"]
    assert [(j["player"], j["slot"]) for j in joins] == \
        [("alice", 0), ("alice", 0)]

    for spent in (first, fresh):
        rc, out, err = env.raw_bot(p, spent, duration=3)
        assert rc == 1 and out["bots"][0]["refused"] == "replayed", out


def test_a_high_s_spelling_and_a_ticket_without_jti_are_refused(env):
    p = env.server(join_timeout=30)
    rc, a = env.allocate("m-sig", players=2)
    assert rc == 0

    good = env.ticket("alice", "m-sig", p.sid)
    rc, out, err = env.raw_bot(p, other_s(good, True), duration=3)
    assert rc == 1 and out["bots"][0]["refused"] == "bad_ticket", out
    assert env.wait_logs(p, "player_refused", reason="bad_ticket",
                         detail="high_s")

    import jwt as pyjwt
    import time as t
    from test_gameserver import low_s
    no_jti = low_s(pyjwt.encode(
        {"sub": "bob", "match_id": "m-sig", "server_id": p.sid,
         "exp": int(t.time()) + 30}, env.keys["k1"][2], algorithm="ES256",
        headers={"kid": "k1"}))
    rc, out, err = env.raw_bot(p, no_jti, duration=3)
    assert rc == 1 and out["bots"][0]["refused"] == "bad_ticket", out
    assert env.wait_logs(p, "player_refused", reason="bad_ticket",
                         detail="missing_claim")

    # the low spelling of the same ticket was never spent: it plays
    rc, out, err = env.raw_bot(p, good, duration=1)
    assert rc == 0, (out, err)
