"""game-fleet: real fleets of real game servers on loopback.

Each test runs its own fleet under its own allocator key prefix on the
stack's Redis (see test_gameserver.py, whose Env and fixtures it shares),
with short join and match times.  A fleet's servers inherit its stdout
and stderr: stdout carries their lifecycle lines (JSON, with server_id),
stderr the fleet's decisions and the servers' logs, JSON lines too, told
apart by their "service".  Behaviour: gameserver/PROTOCOL.md, "game-fleet".
"""

import datetime
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import udp_ports

from test_gameserver import (ALLOC, FLEET, SERVER, env, events,  # noqa: F401
                             json_lines, keys, postponed_scripts, wait_for,
                             warm_scripts)

_ports = iter(udp_ports(180, 100)[::10])


class Fleet:
    """One fleet configuration, and the fleet processes run with it."""

    def __init__(self, env, name, region="fl", server=SERVER, lines=(),
                 server_args=("--join-timeout", "1", "--match-seconds", "2"),
                 **region_opts):
        self.env = env
        self.region = region
        lo = next(_ports)
        self.ports = (lo, lo + 9)
        self.conf = os.path.join(env.dir, name + ".conf")
        self.status = os.path.join(env.dir, name + ".status")
        self.out = os.path.join(env.dir, name + ".out")
        self.err = os.path.join(env.dir, name + ".err")
        self.server = server
        self.server_args = list(server_args)
        self.extra = list(lines)
        self.region_opts = dict(min=1, max=4, buffer=1)
        self.region_opts.update(region_opts)
        self.procs = []
        self.pids = set()
        self.write()

    def write(self, **region_opts):
        self.region_opts.update(region_opts)
        words = ["region", self.region] + \
            ["%s %s" % kv for kv in self.region_opts.items()] + \
            ["ports %d-%d" % self.ports]
        args = ["--ticket-key", "k1=" + self.env.keys["k1"][1]] + \
            self.server_args
        with open(self.conf, "w") as f:
            f.write("redis %s\nprefix %s\nserver %s\nstatus %s\nreap 1\n"
                    % (self.env.redis_addr, self.env.prefix, self.server,
                       self.status))
            for line in self.extra:
                f.write(line + "\n")
            for a in args:
                f.write("server-arg %s\n" % a)
            f.write(" ".join(words) + "\n")

    def start(self):
        out = open(self.out, "a")
        err = open(self.err, "a")
        p = subprocess.Popen([FLEET, "-c", self.conf, "run"], stdout=out,
                             stderr=err)
        self.procs.append(p)
        return p

    def servers(self):
        try:
            with open(self.status) as f:
                s = [json.loads(l) for l in f]
        except FileNotFoundError:
            return []
        self.pids.update(x["pid"] for x in s)
        return s

    def ready(self):
        return [s for s in self.servers()
                if s["state"] == "Ready" and self.env.alive(s["id"])]

    def log(self):
        with open(self.err) as f:
            return f.read()

    def logs(self, event=None, **fields):
        """The fleet's own log lines (not its servers'), all or of one
        event whose fields have those values."""
        lines = [l for l in json_lines(self.log())
                 if l["service"] == "game-fleet"]
        return lines if event is None else events(lines, event, **fields)

    def lines(self, sid=None):
        """Lifecycle lines of the fleet's servers (of one, with sid)."""
        with open(self.out) as f:
            ls = [json.loads(l) for l in f if l.startswith("{")]
        return [l for l in ls if sid is None or l["server_id"] == sid]

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.servers()
        for pid in self.pids:
            # pids are recycled (pid_max 32768, and a crash loop spends
            # many): kill only a process that is still one of our servers
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as fh:
                    if self.server.encode() not in fh.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError):
                pass


@pytest.fixture
def fleets(env):
    made = []

    def make(*args, **kw):
        made.append(Fleet(env, "fleet%d" % len(made), *args, **kw))
        return made[-1]

    yield make
    for f in made:
        f.close()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def log_time(line):
    """A log line's time (RFC 3339, UTC, ms) in seconds since the epoch."""
    return datetime.datetime.strptime(
        line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def test_fleet_refuses_a_drain_shorter_than_a_match(fleets):
    f = fleets(lines=["drain 40"], server_args=())
    r = subprocess.run([FLEET, "-c", f.conf, "run"], capture_output=True,
                       text=True, timeout=10)
    # game-server's defaults: join timeout 10 + match 120 + 10
    assert r.returncode == 2 and "grace is 140 s" in r.stderr, r.stderr

    # the dev configuration passes (no Redis here: it scales nothing)
    dev = os.path.join(os.path.dirname(SERVER), "..", "fleet.dev.conf")
    p = subprocess.Popen([FLEET, "-c", dev, "--redis", "127.0.0.1:1",
                          "--status", f.status, "run"],
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    rc, log = p.wait(timeout=10), p.stderr.read()
    assert rc == 0, log
    (start,) = events(json_lines(log), "fleet_start")
    assert start["drain_s"] == 160 and start["grace_s"] == 140, start


def test_fleet_restart_adopts_its_running_servers(env, fleets):
    f = fleets(min=2, buffer=0)
    first = f.start()
    wait_for(lambda: len(f.ready()) == 2, 10)
    before = {s["id"]: s["pid"] for s in f.servers()}

    # the fleet dies; its servers do not (no more PDEATHSIG)
    first.kill()
    first.wait()
    time.sleep(1.5)
    assert all(pid_alive(pid) for pid in before.values())
    assert all(env.alive(sid) for sid in before)

    second = f.start()
    wait_for(lambda: len(f.logs("server_adopt")) == 2, 5)
    # the first fleet's status file shows the same servers until the new
    # fleet's first pass rewrites it: wait for that pass
    wait_for(lambda: {s["id"]: s["pid"] for s in f.ready()} == before
             and all(s["adopted"] for s in f.servers()), 5)
    assert {l["server"]: l["server_pid"] for l in f.logs("server_adopt")} \
        == before
    assert len(f.logs("server_spawn")) == 2, f.log()    # the first fleet's
    # nothing drained: neither the fleet nor a server (their lines share
    # the file)
    assert not [l for l in json_lines(f.log())
                if l.get("event") in ("fleet_drain", "server_draining")]

    # adopted servers are managed: a lost one is noticed and replaced
    victim = sorted(before)[0]
    os.kill(before[victim], signal.SIGKILL)
    wait_for(lambda: len(f.ready()) == 2
             and victim not in [s["id"] for s in f.servers()], 10)
    (gone,) = f.logs("server_exit", server=victim)
    assert gone["adopted"] is True and gone["cause"] == "unknown", gone
    assert len(f.logs("server_spawn")) == 3

    # and SIGTERM drains them all, adopted or not
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert f.servers() == []
    assert not any(pid_alive(pid) for pid in f.pids)


def test_scale_down_drains_and_an_allocation_that_came_first_plays(env, fleets):
    """The fleet decides to retire a server it sees Ready; an allocation
    reaches Redis between its look and its drain.  Redis is paused for
    scripts (CLIENT PAUSE WRITE) while our allocation and then the fleet's
    drain queue up, in that order, so the race happens every time."""
    f = fleets(min=1, max=1, buffer=0)
    first = f.start()
    wait_for(lambda: len(f.ready()) == 1, 10)
    (srv,) = f.servers()
    first.kill()
    first.wait()
    # the next fleet wants none: it will drain the one it adopts
    f.write(min=0)

    def postponed(ids_before):
        return postponed_scripts(env.r, ids_before)

    warm_scripts(env)
    before = {c["id"] for c in env.r.client_list()}
    env.r.client_pause(5000, all=False)
    try:
        alloc = subprocess.Popen(
            [ALLOC, "--redis", env.redis_addr, "--prefix", env.prefix,
             "--timeout", "10000", "allocate", "--region", f.region,
             "--mode", "dm", "--match", "m-raced", "--players", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(postponed(before)) == 1, 4, step=0.005)
        f.start()
        wait_for(lambda: len(postponed(before)) == 2, 4, step=0.005)
    finally:
        env.r.client_unpause()

    out, err = alloc.communicate(timeout=10)
    assert alloc.returncode == 0, err
    assert json.loads(out)["server_id"] == srv["id"]
    wait_for(lambda: f.logs("server_retire", server=srv["id"], outcome="busy"),
             5)

    # it plays the match (nobody comes: aborted at the join timeout), then
    # leaves instead of going Ready; the fleet killed nothing
    wait_for(lambda: not pid_alive(srv["pid"]), 10)
    events = [l["event"] for l in f.lines(srv["id"])]
    assert events[-5:] == ["allocated", "draining", "match_end", "drained",
                           "exit"], events
    assert "ready" not in events[events.index("allocated"):]
    wait_for(lambda: f.logs("server_exit", server=srv["id"], cause="retired",
                            adopted=True), 5)
    assert not [l for l in f.logs() if "action" in l], f.log()
    assert env.results()[0]["match_id"] == "m-raced"


def test_scale_down_of_an_idle_server_goes_through_drain(env, fleets):
    f = fleets(min=0, max=4, buffer=1)
    f.start()
    wait_for(lambda: len(f.ready()) == 1, 10)
    rc, a = env.allocate("m-up", region=f.region)
    assert rc == 0
    # buffer 1 on top of the busy one; when its match is over (nobody came,
    # join timeout 1 s), one of the two Ready servers is one too many
    wait_for(lambda: f.logs("server_retire"), 15)
    wait_for(lambda: len(f.servers()) == 1, 10)
    gone = [sid for sid in {l["server_id"] for l in f.lines()}
            if sid not in [s["id"] for s in f.servers()]]
    assert len(gone) == 1
    events = [l["event"] for l in f.lines(gone[0])]
    assert events[-2:] == ["drained", "exit"], events
    (retire,) = f.logs("server_retire")
    assert retire["outcome"] == "drained" and retire["server"] == gone[0]
    (down,) = f.logs("scale", direction="down")
    assert down["count"] == 1 and down["have"] > down["wanted"], down
    assert not [l for l in f.logs() if "action" in l], f.log()


def test_hung_server_is_killed_and_replaced(env, fleets):
    f = fleets(min=1, max=2, buffer=1, lines=["hung 2"])
    f.start()
    wait_for(lambda: len(f.ready()) == 1, 10)
    (victim,) = f.servers()
    health = f.status + ".health/" + victim["id"]
    assert os.path.getsize(health) > 0

    os.kill(victim["pid"], signal.SIGSTOP)
    wait_for(lambda: not pid_alive(victim["pid"]), 10)
    (hung,) = f.logs("server_hung", server=victim["id"])
    assert hung["level"] == "error" and hung["action"] == "SIGKILL"
    assert hung["server_pid"] == victim["pid"] and hung["silent_ms"] > 2000
    assert hung["phase"] == "idle"
    wait_for(lambda: f.logs("server_exit", server=victim["id"],
                            cause="killed", why="hung"), 5)
    wait_for(lambda: len(f.ready()) == 1
             and f.ready()[0]["id"] != victim["id"], 10)
    assert not os.path.exists(health)


def test_server_that_never_registers_is_replaced(env, fleets):
    script = os.path.join(env.dir, "sleeper.sh")
    with open(script, "w") as fh:
        fh.write("#!/bin/sh\nexec sleep 60\n")
    os.chmod(script, 0o755)
    f = fleets(server=script, min=1, max=1, buffer=0,
               lines=["register-timeout 1"])
    f.start()
    wait_for(lambda: f.servers(), 5)
    first = f.servers()[0]
    wait_for(lambda: f.servers() and f.servers()[0]["id"] != first["id"], 10)
    assert f.logs("server_register_timeout", server=first["id"],
                  register_timeout_s=1, action="SIGKILL")
    assert not pid_alive(first["pid"])


def test_a_busy_server_the_allocator_forgot_is_not_replaced(env, fleets):
    """Redis lost the record of a server that waits for its players, and
    the fleet restarts: the adopted server is not in the allocator, but its
    health file says its loop holds a match, so it is left to finish."""
    f = fleets(min=1, max=1, buffer=0, lines=["register-timeout 2"],
               server_args=("--join-timeout", "6", "--match-seconds", "2"))
    first = f.start()
    wait_for(lambda: len(f.ready()) == 1, 10)
    (srv,) = f.servers()
    rc, a = env.allocate("m-forgotten", region=f.region)
    assert rc == 0
    wait_for(lambda: [l for l in f.lines(srv["id"])
                      if l["event"] == "allocated"], 5)
    first.kill()
    first.wait()
    env.r.delete(*env.r.scan_iter(match=env.prefix + "*"))

    f.start()
    wait_for(lambda: f.logs("server_adopt", server=srv["id"]), 5)
    # the match ends at the join timeout (nobody came), the server
    # registers again, and the fleet sees it at last
    wait_for(lambda: [l for l in f.lines(srv["id"])
                      if l["event"] == "ready"], 15)
    wait_for(lambda: f.ready() and f.ready()[0]["id"] == srv["id"], 5)
    assert pid_alive(srv["pid"])
    assert not f.logs("server_register_timeout")


def test_crash_loop_backs_off(env, fleets):
    script = os.path.join(env.dir, "crasher.sh")
    with open(script, "w") as fh:
        fh.write("#!/bin/sh\nexit 1\n")
    os.chmod(script, 0o755)
    f = fleets(server=script, min=1, max=1, buffer=0)
    p = f.start()

    def delays():
        return [l["respawn_delay_ms"] for l in f.logs("server_crash")]

    # without back-off there is no delay at all: a respawn every pass
    wait_for(lambda: len(delays()) >= 4, 30)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0

    log = f.log()
    d = delays()
    spawns = [log_time(l) for l in f.logs("server_spawn")]
    # each crash doubles the delay: 250, 500, 1000, 2000 ...
    assert d == [min(250 * 2 ** i, 30000) for i in range(len(d))], log
    # a crash is told with its status, typed
    crash = f.logs("server_crash")[0]
    assert crash["exit_code"] == 1 and crash["level"] == "error", crash
    assert isinstance(crash["lived_ms"], int) and crash["lived_ms"] < 10000

    # the crashes are counted where Prometheus' textfile collector reads
    with open(f.status + ".prom") as fh:
        prom = fh.read()
    r = subprocess.run(["promtool", "check", "metrics"], input=prom,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    crashes = int(re.search(r'^game_fleet_manager_crashes_total\{region='
                            r'"[^"]+"\} (\d+)$', prom, re.M).group(1))
    spawned = int(re.search(r'^game_fleet_manager_spawns_total\{region='
                            r'"[^"]+"\} (\d+)$', prom, re.M).group(1))
    assert crashes >= len(d) and spawned >= crashes, prom
    # one spawn per crash, and none sooner than its delay (a slow machine
    # only makes the gaps longer)
    assert len(spawns) in (len(d), len(d) + 1), log
    for i in range(len(spawns) - 1):
        assert spawns[i + 1] - spawns[i] >= d[i] / 1000 - 0.002, (i, log)


def test_status_without_flags_finds_the_stacks_fleet(tmp_path):
    """`make up` (GAME_VAR unset) runs the fleet with the status file
    var/fleet/fleet.status of the checkout; `game-fleet status` typed in
    any folder, with no flag, must look there (fleet.dev.conf says so,
    relative to itself, and the binary finds fleet.dev.conf)."""
    root = os.path.abspath(os.path.join(os.path.dirname(FLEET), "..", ".."))
    with open(os.path.join(root, "scripts", "stack")) as fh:
        stack = fh.read()
    assert '--status "$var/fleet/fleet.status"' in stack
    assert "var=${GAME_VAR:-$root/var}" in stack
    want = os.path.join(root, "var", "fleet", "fleet.status")

    for cwd in (root, str(tmp_path)):
        r = subprocess.run([FLEET, "status"], cwd=cwd, capture_output=True,
                           text=True)
        if os.path.exists(want):
            assert r.returncode == 0 and "STATE" in r.stdout, r
        else:
            said = r.stderr.split("no status at ")[1].split(" (")[0]
            path = os.path.join(cwd, said)
            assert os.path.normpath(path) == want, r.stderr

    # a relative status in any configuration is relative to that file
    conf = tmp_path / "f.conf"
    conf.write_text("server %s\nstatus st/fleet.status\n"
                    "region r min 0 max 0 buffer 0 ports 1-2\n" % SERVER)
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "fleet.status").write_text(
        '{"id":"x-1","pid":1,"port":1,"region":"r","state":"Ready",'
        '"retiring":false,"adopted":false,"spawned_at_ms":0}\n')
    r = subprocess.run([FLEET, "-c", str(conf), "status"], cwd="/",
                       capture_output=True, text=True)
    assert r.returncode == 0 and "x-1" in r.stdout, r


def test_fleet_metrics_carry_what_the_servers_publish(env, fleets):
    """<status>.prom: the servers a fleet runs by state, and the tick time
    p99 each server publishes in its health file (a window of 256 ticks,
    so a few seconds after the start)."""
    f = fleets(min=2, max=2, buffer=0)
    p = f.start()

    def prom():
        try:
            with open(f.status + ".prom") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def gauge(name, text):
        m = re.search(r'^%s\{region="%s"(?:,state="Ready")?\} ([0-9.]+)$'
                      % (name, re.escape(f.region)), text, re.M)
        return float(m.group(1)) if m else None

    wait_for(lambda: gauge("game_fleet_manager_servers", prom()) == 2, 15)
    wait_for(lambda: (gauge("game_fleet_manager_tick_p99_seconds", prom())
                      or 0) > 0, 40)
    text = prom()
    r = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # a tick takes far less than a second: a unit mistake would show here
    assert gauge("game_fleet_manager_tick_p99_seconds", text) < 1
    assert gauge("game_fleet_manager_players", text) == 0
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
