"""What game-server and game-fleet write: one JSON object per line, on
stdout (a server's lifecycle lines) and stderr (the log), each with the
envelope a log shipper indexes: time (RFC 3339, UTC, ms), level, service,
server or fleet, pid; the log's lines with a msg, the important ones with
an event name and typed fields.  Format: gameserver/PROTOCOL.md, "Logs".
"""

import os
import re
import signal
import subprocess
import time

from test_fleet import Fleet, fleets, log_time  # noqa: F401
from test_gameserver import (env, events, json_lines, keys,  # noqa: F401
                             other_s, wait_for)

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EVENT = re.compile(r"^[a-z][a-z0-9_]*$")
LEVELS = ("error", "warn", "info", "debug")


def check_lines(text, t0, t1):
    """Every line of text, parsed and checked: what any line must have."""
    assert text == "" or text.endswith("\n"), text[-200:]
    lines = json_lines(text)
    for l in lines:
        assert isinstance(l, dict), l
        assert TIME.match(l["time"]), l
        assert t0 - 2 <= log_time(l) <= t1 + 2, (t0, t1, l)
        assert l["level"] in LEVELS, l
        assert isinstance(l["pid"], int) and l["pid"] > 0, l
        assert l["service"] in ("game-server", "game-fleet"), l
        who = "server" if l["service"] == "game-server" else "fleet"
        assert isinstance(l[who], str) and l[who], l
        if l.get("kind") == "lifecycle":
            assert l["service"] == "game-server" and "msg" not in l, l
            assert EVENT.match(l["event"]), l
        else:
            assert isinstance(l["msg"], str) and l["msg"], l
            assert "event" not in l or EVENT.match(l["event"]), l
    return lines


def one_type_per_key(lines):
    """A key has one JSON type in every line it is in (null aside), so
    that one index mapping (Elasticsearch's) holds all the lines."""
    kinds = {}
    for l in lines:
        for k, v in l.items():
            if v is None:
                continue
            t = "number" if isinstance(v, (int, float)) \
                and not isinstance(v, bool) else type(v).__name__
            assert kinds.setdefault(k, (t, l))[0] == t, (k, kinds[k], l)


def in_order(lines, *names):
    """The first line of each event, in that order."""
    at = [next(i for i, l in enumerate(lines) if l.get("event") == n)
          for n in names]
    assert at == sorted(at), list(zip(names, at))


def test_a_servers_lines_are_json_with_the_envelope_and_typed_fields(env):
    t0 = time.time()
    p = env.server(match_seconds=2, join_timeout=10)
    token = env.r.hget(env.prefix + "server:" + p.sid, "token")
    assert token
    rc, a = env.allocate("m-logs", players=2)
    assert rc == 0
    tickets = {who: env.ticket(who, "m-logs", p.sid)
               for who in ("alice", "bob")}

    # a refusal first: the high-s spelling of alice's ticket
    high = other_s(tickets["alice"], True)
    rc, out, err = env.raw_bot(p, high, duration=2)
    assert rc == 1 and out["bots"][0]["refused"] == "bad_ticket", out
    bots = [subprocess.Popen(env.bot_args("--server", "127.0.0.1:%d"
                                          % p.port, ticket=t, duration=8),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            for t in tickets.values()]
    wait_for(lambda: env.results(), 20)
    for b in bots:
        b.wait(timeout=20)
    wait_for(lambda: "ready" in env.events(p), 10)      # idle again
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0
    t1 = time.time()

    err = env.log(p)
    with open(p.outpath) as f:
        out = f.read()
    log = check_lines(err, t0, t1)
    life = check_lines(out, t0, t1)
    assert all(l["service"] == "game-server" and l["server"] == p.sid
               and l["pid"] == p.pid for l in log + life)
    assert all(l["kind"] == "lifecycle" and l["server_id"] == p.sid
               for l in life)
    assert not [l for l in log if "kind" in l]
    one_type_per_key(log + life)

    # no ticket, no part of one, and not the allocator token
    for secret in [token, high, high.rsplit(".", 1)[1]] + \
            [x for t in tickets.values() for x in (t, t.rsplit(".", 1)[1])]:
        assert secret not in err and secret not in out

    # the loop's events come in the order of its life (the refusal may
    # come before the server hears of its allocation: a heartbeat brings it)
    in_order(log, "server_start", "server_allocated", "player_seated",
             "match_start", "match_end", "server_draining", "server_shutdown")
    in_order(log, "server_start", "player_refused", "player_seated")
    in_order(log, "match_end", "result_published")
    in_order(log, "server_shutdown", "server_deregistered")

    (start,) = events(log, "server_start")
    assert start["port"] == p.port and start["tick_hz"] == 30
    assert start["max_players"] == 16 and start["level"] == "info"
    (reg,) = events(log, "server_ready", via="register")
    assert reg["port"] == p.port and reg["region"] == "local"
    assert events(log, "server_ready", via="match_end", last_match="m-logs")
    (alloc,) = events(log, "server_allocated")
    assert alloc["match_id"] == "m-logs" and alloc["players"] == 2

    refused = events(log, "player_refused", reason="bad_ticket")
    assert refused[0]["detail"] == "high_s" and refused[0]["ip"] == "127.0.0.1"
    assert isinstance(refused[0]["port"], int) and refused[0]["untold"] == 0
    assert len(events(log, "player_connect", ip="127.0.0.1")) >= 3
    seated = events(log, "player_seated", match_id="m-logs")
    assert sorted(l["player"] for l in seated) == ["alice", "bob"]
    assert sorted(l["slot"] for l in seated) == [0, 1]

    (begun,) = events(log, "match_start")
    assert begun["players"] == 2 and begun["expected"] == 2
    (over,) = events(log, "match_end")
    assert over["match_id"] == "m-logs" and over["reason"] == "time"
    assert over["joined"] == 2 and over["winner"] in ("alice", "bob", None)
    assert isinstance(over["duration_ms"], int) and over["duration_ms"] > 0
    (pub,) = events(log, "result_published")
    assert pub["match_id"] == "m-logs" and re.match(r"^\d+-\d+$",
                                                    pub["entry"]), pub
    (drain,) = events(log, "server_draining")
    assert drain["reason"] == "signal" and drain["busy"] is False
    assert isinstance(drain["grace_s"], int)
    (end,) = events(log, "server_shutdown")
    assert end["matches"] == 1 and end["guard"]["log_dropped"] == 0


def test_a_fleets_lines_and_its_servers_are_json_with_the_envelope(env,
                                                                  fleets):
    t0 = time.time()
    f = fleets(min=1, max=2, buffer=1, lines=["name logs-fleet"])
    p = f.start()
    wait_for(lambda: len(f.ready()) == 1, 10)
    rc, a = env.allocate("m-fleet-logs", region=f.region)
    assert rc == 0

    # buffer 1 on top of the busy one: a second server, which registers
    def registered():
        lines = json_lines(f.log())
        return {l["server"] for l in events(lines, "server_ready",
                                            via="register")}
    wait_for(lambda: len(registered()) == 2, 15)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    t1 = time.time()

    lines = check_lines(f.log(), t0, t1)
    with open(f.out) as fh:
        life = check_lines(fh.read(), t0, t1)
    fleet = [l for l in lines if l["service"] == "game-fleet"]
    servers = [l for l in lines if l["service"] == "game-server"]
    assert fleet and servers and life
    one_type_per_key(lines + life)
    assert all(l["fleet"] == "logs-fleet" and l["pid"] == p.pid
               for l in fleet)

    # the fleet's decisions, typed
    (start,) = events(fleet, "fleet_start")
    assert start["regions"] == 1 and isinstance(start["drain_s"], int)
    first = events(fleet, "scale", direction="up")[0]
    assert (first["count"], first["wanted"], first["have"]) == (1, 1, 0)
    assert events(fleet, "scale", direction="up", allocated=1, wanted=2)
    spawned = {l["server"]: l["server_pid"]
               for l in events(fleet, "server_spawn")}
    assert len(spawned) == 2
    for l in events(fleet, "server_spawn"):
        assert l["region"] == f.region and l["adopted"] is False
        assert f.ports[0] <= l["port"] <= f.ports[1]
    # (one may have been retired already: both Ready once the match ended)
    (drain,) = events(fleet, "fleet_drain")
    assert drain["servers"] in (1, 2)
    exits = events(fleet, "server_exit")
    assert {l["server"] for l in exits} == set(spawned)
    assert all(l["exit_code"] == 0 and l["cause"] == "retired"
               and l["server_pid"] == spawned[l["server"]] for l in exits)
    assert fleet[-1]["event"] == "fleet_stop"

    # each server's lines carry its own id and pid, as the fleet spawned it
    assert all(l["pid"] == spawned[l["server"]] for l in servers + life)
    for sid in spawned:
        assert events(servers, "server_start", server=sid)
        assert events(servers, "server_shutdown", server=sid)
    (alloc,) = events(servers, "server_allocated")
    assert alloc["match_id"] == "m-fleet-logs"


def test_a_stopped_server_tells_its_late_tick(env):
    p = env.server()
    for _ in range(3):
        # stopped while it waits for its next tick, almost always; a stop
        # in the instant after a tick's work is skipped over unseen
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(0.6)
        os.kill(p.pid, signal.SIGCONT)
        try:
            wait_for(lambda: [l for l in env.logs(p, "tick_overrun")
                              if l["late_us"] + l["took_us"] >= 400000], 3)
            break
        except AssertionError:
            continue
    over = max(env.logs(p, "tick_overrun"),
               key=lambda l: l["late_us"] + l["took_us"])
    assert over["level"] == "warn" and over["budget_us"] == 1000000 // 30
    assert over["late_us"] + over["took_us"] >= 400000, over
    assert over["phase"] == "idle" and over["players"] == 0
    assert isinstance(over["untold"], int)
    # and it serves on
    wait_for(lambda: env.state(p.sid) == "Ready" and env.alive(p.sid), 10)
