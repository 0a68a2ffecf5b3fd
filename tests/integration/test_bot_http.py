"""game-bot's HTTP path: device sign-in, matchmaking, the connection ticket,
then the game on a real game-server.

The bots use the `botpair` mode (conf/test.conf), a queue of their own, so
that tickets other tests leave queued cannot be matched with them.
"""

import json
import os
import socket
import subprocess
import time
import uuid

import redis

from conftest import udp_ports

BUILD = os.path.join(os.path.dirname(__file__), "..", "..", "gameserver",
                     "build")
SERVER_BIN = os.path.join(BUILD, "game-server")
BOT_BIN = os.path.join(BUILD, "game-bot")


def free_udp_port():
    for port in udp_ports(280, 20):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free UDP port in %r" % udp_ports(280, 20))


def public_key(stack, tmp_path):
    priv = os.path.join(stack.var, "keys", "jwt-1.pem")
    pub = str(tmp_path / "jwt-1.pub.pem")
    subprocess.run(["openssl", "ec", "-in", priv, "-pubout", "-out", pub],
                   check=True, capture_output=True)
    return pub


def run_bot(stack, *args, timeout=60):
    p = subprocess.run([BOT_BIN, "--api", stack.base_url] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    lines = p.stdout.strip().splitlines()
    run_bot.last_stdout = p.stdout
    assert lines, "no summary; stderr: %s" % p.stderr
    return p.returncode, json.loads(lines[-1]), p.stderr


def test_bots_sign_in_get_matched_connect_and_play(stack, tmp_path):
    pub = public_key(stack, tmp_path)
    port = free_udp_port()
    sid = "bothttp-" + uuid.uuid4().hex[:6]
    server = subprocess.Popen(
        [SERVER_BIN, "--id", sid, "--port", str(port), "--redis",
         "127.0.0.1:%d" % stack.redis_port, "--mode", "botpair",
         "--ticket-key", "1=" + pub, "--match-seconds", "3",
         "--max-matches", "1", "--join-timeout", "15"],
        stdout=open(tmp_path / "server.out", "w"),
        stderr=open(tmp_path / "server.err", "w"))
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    try:
        end = time.monotonic() + 5
        while rds.hget("game:server:" + sid, "state") != "Ready":
            assert time.monotonic() < end, "the game server never got Ready"
            time.sleep(0.1)

        rc, summary, err = run_bot(stack, "--mode", "botpair", "--players",
                                   "2", "--duration", "10",
                                   "--match-timeout", "20")
        assert rc == 0, (summary, err)
        assert summary["ok"] is True and summary["failed"] == 0
        assert summary["port"] == port

        bots = summary["bots"]
        assert len(bots) == 2
        for b in bots:
            assert b["ok"] is True, b
            assert b["error"] is None and b["failure"] is None
            assert b["time_to_match_ms"] is not None
            assert 0 < b["time_to_match_ms"] < 20000
            assert b["connect_ms"] > 0
            assert b["snapshots"] > 0
            assert b["inputs_sent"] > 0
            assert b["match_end"] is not None
        # what it did, as it did it, on stderr; stdout is the summary only
        for b in bots[:2]:
            who = "(%s)" % b["player"]
            told = [l for l in err.splitlines() if who in l]
            for step in ("signed in", "queued for botpair",
                         "on 127.0.0.1:%d" % port, "connected, slot",
                         "match over"):
                assert any(step in l for l in told), (step, err)
        assert len(run_bot.last_stdout.strip().splitlines()) == 1

        # two fresh guests, matched with each other
        assert bots[0]["player"] != bots[1]["player"]
        match_id = bots[0]["match_id"]
        assert match_id and bots[1]["match_id"] == match_id

        end = time.monotonic() + 10
        results = []
        while not results:
            assert time.monotonic() < end, "no result published"
            results = [json.loads(f["result"])
                       for _, f in rds.xrange("game:results")
                       if json.loads(f["result"])["match_id"] == match_id]
            time.sleep(0.2)
        assert {p["id"] for p in results[0]["players"]} == \
            {b["player"] for b in bots}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_unknown_mode_fails_with_the_backends_code(stack):
    rc, summary, _ = run_bot(stack, "--mode", "no-such-mode-" +
                             uuid.uuid4().hex[:4], "--match-timeout", "5")
    assert rc != 0
    assert summary["ok"] is False and summary["failed"] == 1
    b = summary["bots"][0]
    assert b["ok"] is False
    assert b["error"] == "unknown_mode"
    assert b["failure"].startswith("join: HTTP 422 unknown_mode")
    assert b["time_to_match_ms"] is None and b["snapshots"] == 0


def test_a_bot_that_is_never_matched_times_out_and_leaves_the_queue(stack):
    """One player in a two-player mode: no match can form.  The bot gives
    up after --match-timeout and cancels its ticket (the queue is empty
    again afterwards for the tests that come later)."""
    start = time.monotonic()
    rc, summary, _ = run_bot(stack, "--mode", "botpair",
                             "--match-timeout", "2")
    took = time.monotonic() - start
    assert rc == 1
    b = summary["bots"][0]
    assert b["error"] == "match_timeout", b
    assert "no match within 2 s" in b["failure"]
    assert 2 <= took < 10

    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    pid = b["player"]
    ticket = rds.get("mm:player:" + pid)
    assert ticket, "the bot never queued"
    assert rds.hget("mm:ticket:" + ticket, "status") == "cancelled"
