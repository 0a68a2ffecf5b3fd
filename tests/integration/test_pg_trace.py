"""Tracing: PostgreSQL knows which nginx request sent each statement.

With game_pg_pool trace=on (the default), a request's statements run under
application_name "nginx-game r=<$request_id>" (the id of its JSON access
log line and of its X-Request-Id header) and background work under a name
saying what it is ("nginx-game writer").  These tests turn PostgreSQL's
statement log on, with %a in its prefix, and read who ran what; the
settings are put back at the end.
"""

import json
import os
import re
import signal
import shutil
import subprocess
import tempfile
import time
import uuid

import psycopg2
import pytest
import requests

import lb_helpers
import tel_helpers
from auth_helpers import register
from mm_helpers import device_player

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.environ.get("GAME_MODULES", os.path.join(ROOT, "build", "modules"))

PREFIX = "%m [%p] app=[%a] "
ENTRY = re.compile(r"\[(\d+)\] app=\[(.*?)\] ([A-Z]+):  (.*)$")
STEP = re.compile(r"duration: [\d.]+ ms  (\w+) ([^:]+): ")
SET_CONFIG = "SELECT set_config('application_name', $1, false)"
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class Entry:
    def __init__(self, pid, app, level, text):
        self.pid, self.app, self.level, self.text = pid, app, level, text
        self.detail = ""

    def is_(self, step, stmt=None):
        """A statement's step ("execute", "bind") logged with its duration,
        of statement "stmt" if given."""
        m = STEP.search(self.text)
        return (m is not None and m.group(1) == step
                and (stmt is None or m.group(2) == stmt))

    @property
    def stmt(self):
        m = STEP.search(self.text)
        return m and m.group(2)

    @property
    def sets_name(self):
        return SET_CONFIG in self.text

    def param(self, n=1):
        m = re.search(r"\$%d = '([^']*)'" % n, self.detail)
        return m and m.group(1)

    def __repr__(self):
        return "[%s] app=[%s] %s %s" % (self.pid, self.app, self.level,
                                         self.text[:120])


class PgLog:
    """PostgreSQL's log from a point on, as entries: the log line of a
    statement with its DETAIL (the parameters) attached."""

    def __init__(self, path):
        self.path = path
        self.start = os.path.getsize(path)

    def mark(self):
        self.start = os.path.getsize(self.path)

    def entries(self):
        out = []
        with open(self.path, errors="replace") as f:
            f.seek(self.start)
            for line in f:
                m = ENTRY.search(line.rstrip("\n"))
                if m is None:
                    continue
                pid, app, level, text = m.groups()
                if level == "DETAIL" and out and out[-1].pid == pid:
                    out[-1].detail = text
                elif level in ("LOG", "ERROR", "FATAL"):
                    out.append(Entry(pid, app, level, text))
        return out

    def wait(self, cond, what, timeout=20.0):
        """Wait until cond(entries) is true; return the entries."""
        end = time.monotonic() + timeout
        while True:
            entries = self.entries()
            if cond(entries):
                return entries
            if time.monotonic() > end:
                raise AssertionError("not in PostgreSQL's log: %s\n%s" % (
                    what, "\n".join(map(repr, entries[-30:]))))
            time.sleep(0.2)


def pg_admin(stack):
    conn = psycopg2.connect(host="127.0.0.1", port=stack.pg_port,
                            dbname="postgres", user="postgres")
    conn.autocommit = True
    return conn


@pytest.fixture(scope="module")
def pglog(stack):
    """Every statement logged, with the application_name in the prefix."""
    admin = pg_admin(stack)
    with admin.cursor() as c:
        c.execute("ALTER SYSTEM SET log_line_prefix = %s", (PREFIX,))
        c.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
        c.execute("SELECT pg_reload_conf()")
    end = time.monotonic() + 10
    while True:
        check = pg_admin(stack)
        with check.cursor() as c:
            c.execute("SHOW log_line_prefix")
            prefix = c.fetchone()[0]
        check.close()
        if prefix == PREFIX:
            break
        assert time.monotonic() < end, "log_line_prefix not reloaded"
        time.sleep(0.1)
    # the backends reload on their next message
    time.sleep(0.3)
    try:
        yield PgLog(os.path.join(stack.var, "log", "postgres.log"))
    finally:
        with admin.cursor() as c:
            c.execute("ALTER SYSTEM RESET log_line_prefix")
            c.execute("ALTER SYSTEM RESET log_min_duration_statement")
            c.execute("SELECT pg_reload_conf()")
        admin.close()


def request_id(r):
    rid = r.headers.get("X-Request-Id", "")
    assert REQUEST_ID.match(rid), r.headers
    return rid


def test_a_request_statements_run_under_its_request_id(stack, pglog):
    """The id PostgreSQL shows is the one of the answer's X-Request-Id and
    of the request's JSON access log line; it travels as a parameter,
    never in SQL text."""
    pglog.mark()
    r = requests.post(stack.url("/auth/device"), timeout=10,
                      json={"device_id": "dev-" + uuid.uuid4().hex})
    assert r.status_code in (200, 201), r.text
    rid = request_id(r)
    app = "nginx-game r=" + rid

    # nginx writes the access log line after the answer
    logged = []
    for _ in range(50):
        with open(os.path.join(stack.var, "log", "nginx-access.json")) as f:
            logged = [json.loads(line) for line in f if rid in line]
        if logged:
            break
        time.sleep(0.1)
    assert [(e["request_id"], e["uri"]) for e in logged] == [
        (rid, "/auth/device")]

    entries = pglog.wait(
        lambda es: any(e.app == app and e.is_("execute", "game_auth_device")
                       for e in es),
        "the sign-in's statement under " + app)
    named = [e for e in entries if e.is_("execute") and e.sets_name
             and e.param() == app]
    assert named and all(e.app == app for e in named), named
    assert not [e for e in entries if rid in e.text], "id in SQL text"


def test_a_connection_is_named_only_when_the_sender_changes(stack, pglog):
    """Login runs two statements one after the other: the second one finds
    its connection named already (unless background work used it in
    between).  No set_config ever gives a connection the name it has."""
    pglog.mark()
    r, username, _ = register(stack)
    assert r.status_code == 201, r.text

    def skipped(entries):
        """some request's second statement ran right after its first on
        the same connection, with no set_config between"""
        last = {}
        for e in entries:
            if not e.is_("execute"):
                continue
            prev = last.get(e.pid)
            if (prev is not None and not prev.sets_name
                    and not e.sets_name and prev.app == e.app
                    and prev.app.startswith("nginx-game r=")):
                return True
            last[e.pid] = e
        return False

    for _ in range(10):
        login = requests.post(stack.url("/auth/login"), timeout=10,
                              json={"login": username,
                                    "password": "correct horse battery "
                                                "staple"})
        assert login.status_code == 200, login.text
        app = "nginx-game r=" + request_id(login)
        entries = pglog.wait(
            lambda es: any(e.app == app
                           and e.is_("execute", "game_auth_login_issue")
                           for e in es),
            "the login's statements under " + app)
        ran = [e for e in entries if e.is_("execute")
               and e.stmt.startswith("game_auth_login")]
        mine = [e for e in ran if e.app == app]
        assert len(mine) == 2, ran
        if skipped(entries):
            break
    else:
        raise AssertionError("no statement ever reused its connection's name")

    # the bind of a set_config shows the name before it: never the same
    redundant = [e for e in pglog.entries()
                 if e.is_("bind") and e.sets_name and e.param() == e.app]
    assert not redundant, redundant


def test_background_work_names_what_it_is(stack, pglog):
    """The event-bus consumers, the telemetry writer, the maintenance jobs
    and the readiness probes each run under a name of their own, never
    under a request's.  A probe between two of the writer's loads on its
    copy=on pool (no pipeline) makes the writer name the connection
    again, in a round trip of its own."""
    pglog.mark()
    _, auth = device_player(stack)

    def renamed(entries):
        return any(e.is_("execute", "<unnamed>") and e.sets_name
                   and e.param() == "nginx-game writer" for e in entries)

    for _ in range(5):
        # probes on both workers' pools, then loads
        for _ in range(6):
            assert requests.get(stack.url("/readyz"),
                                timeout=10).status_code == 200
        for _ in range(3):
            r = tel_helpers.send(stack, auth, tel_helpers.events(3))
            assert r.status_code == 202, r.text
        try:
            pglog.wait(renamed, "the writer renaming its COPY connection",
                       timeout=5)
            break
        except AssertionError:
            pass
    else:
        raise AssertionError("the writer never renamed its connection")

    a, _ = lb_helpers.new_player(stack)
    b, _ = lb_helpers.new_player(stack)
    o = lb_helpers.publish(stack, lb_helpers.outcome(
        [lb_helpers.player(a, "win", kills=2),
         lb_helpers.player(b, "loss", team=1)]))
    lb_helpers.applied(stack, o)

    roles = {
        # name: a statement it runs
        "nginx-game ready": "game_core_ready",
        "nginx-game writer": "game_tel_write_rows",
        "nginx-game tel-maint": "game_tel_maintain",
        "nginx-game lb-maint": "game_lb_seasons_tick",
        "nginx-game lb-apply": "game_lb_apply_outcome",
        "nginx-game econ-rewards": "game_econ_match_rewards",
    }

    def ran(entries, stmt):
        # the writer's statement is a plain one on the copy=on pool
        return [e for e in entries if e.is_("execute")
                and (e.is_("execute", stmt)
                     or (stmt == "game_tel_write_rows"
                         and "tel_write_rows" in e.text))]

    entries = pglog.wait(
        lambda es: all(any(e.app == app for e in ran(es, stmt))
                       for app, stmt in roles.items()),
        "every role's statements")
    for app, stmt in roles.items():
        wrong = [e for e in ran(entries, stmt) if e.app != app]
        assert not wrong, (app, wrong)


def test_a_failed_or_timed_out_request_leaves_no_name_behind(stack, pglog):
    """Request A fails (a taken username: the statement errors), or times
    out (its row is locked until PostgreSQL's lock_timeout or the pool's
    query_timeout); request B, next on the same client connection (so the
    same worker, and most often the same PostgreSQL connection), runs
    under its own id."""
    http = requests.Session()
    player_b, auth_b = device_player(stack)
    taken = register(stack)[1]

    def wallet_b():
        r = http.get(stack.url("/player/me/wallet"), headers=auth_b,
                     timeout=10)
        assert r.status_code == 200, r.text
        return r

    same_backend = False
    for attempt in range(3):
        pglog.mark()

        # A: fails
        fail = http.post(stack.url("/auth/register"), timeout=10,
                         json={"username": taken,
                               "email": uuid.uuid4().hex + "@example.com",
                               "password": "correct horse battery staple"})
        assert fail.status_code == 409, fail.text
        app_fail = "nginx-game r=" + request_id(fail)

        app_b = "nginx-game r=" + request_id(wallet_b())

        entries = pglog.wait(
            lambda es: any(e.app == app_b and e.is_("execute",
                                                     "game_econ_wallet")
                           for e in es),
            "B's wallet under " + app_b)
        failed = [e for e in entries if e.level == "ERROR"
                  and e.app == app_fail]
        assert failed, entries[-20:]
        mine = [e for e in entries if e.is_("execute", "game_econ_wallet")
                and e.param() == player_b]
        assert mine and all(e.app == app_b for e in mine), mine
        if failed[0].pid in {e.pid for e in mine}:
            same_backend = True
            break
    assert same_backend, "B never ran where A failed"

    # A: times out, its player's row locked by us
    player_a, auth_a = device_player(stack)
    locker = psycopg2.connect(host="127.0.0.1", port=stack.pg_port,
                              dbname="game", user="game")
    try:
        with locker.cursor() as c:
            c.execute("SELECT 1 FROM players WHERE id = %s FOR UPDATE",
                      (player_a,))
        pglog.mark()
        slow = http.get(stack.url("/player/me/wallet"), headers=auth_a,
                        timeout=10)
        assert slow.status_code == 504, slow.text
        app_slow = "nginx-game r=" + request_id(slow)
    finally:
        locker.rollback()
        locker.close()

    app_b = "nginx-game r=" + request_id(wallet_b())
    entries = pglog.wait(
        lambda es: any(e.app == app_b and e.is_("execute", "game_econ_wallet")
                       for e in es),
        "B's wallet after the timeout under " + app_b)
    assert [e for e in entries if e.app == app_slow]
    mine = [e for e in entries if e.is_("execute", "game_econ_wallet")
            and e.param() == player_b]
    assert mine and all(e.app == app_b for e in mine), mine


def own_nginx(stack, d, pools):
    """An nginx of the test's own, the core module alone, /readyz over
    "pools" (lines of game_pg_pool), one worker."""
    port = stack.http_port + 9
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""
load_module %(modules)s/ngx_game_core_module.so;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
%(pools)s
    server {
        listen 127.0.0.1:%(port)d;
        location = /readyz { game_ready; }
    }
}
""" % {"modules": MODULES, "d": d, "port": port,
       "pools": "\n".join("    " + p for p in pools)})
    subprocess.run(["nginx", "-p", d, "-c", conf, "-e", d + "/error.log"],
                   check=True)
    return "http://127.0.0.1:%d" % port


def stop_nginx(d):
    with open(os.path.join(d, "nginx.pid")) as f:
        master = int(f.read())
    os.kill(master, signal.SIGQUIT)
    for _ in range(100):
        try:
            os.kill(master, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


def test_trace_off_sends_no_set_config(stack, pglog):
    """Two pools side by side, with application_names of their own: the
    one with trace=off never names its connections, its statements run
    under the connection string's name; the traced one names them after
    that name ("<name> ready" for the probes), once."""
    d = tempfile.mkdtemp(prefix="game-trace.")
    dsn = "host=127.0.0.1 port=%d dbname=game user=game" % stack.pg_port
    try:
        base = own_nginx(stack, d, [
            'game_pg_pool on "%s application_name=trace-on-test" '
            'connections=1;' % dsn,
            'game_pg_pool off "%s application_name=trace-off-test" '
            'connections=1 trace=off;' % dsn])
        pglog.mark()
        for _ in range(5):
            r = requests.get(base + "/readyz", timeout=10)
            assert r.status_code == 200, r.text

        def ran(app):
            return lambda es: len([e for e in es if e.app == app and e.is_(
                "execute", "game_core_ready")]) >= 5
        pglog.wait(ran("trace-on-test ready"), "the traced pool's probes")
        entries = pglog.wait(ran("trace-off-test"),
                             "the untraced pool's probes")

        off = [e for e in entries if e.app.startswith("trace-off-test")]
        assert {e.app for e in off} == {"trace-off-test"}
        assert not [e for e in off if e.sets_name], off
        # nor did anyone name the untraced pool's connections
        assert not [e for e in entries if e.sets_name
                    and (e.param() or "").startswith("trace-off")]
        on = [e.param() for e in entries if e.is_("execute") and e.sets_name
              and e.app.startswith("trace-on-test")]
        assert on == ["trace-on-test ready"], on
    finally:
        if os.path.exists(os.path.join(d, "nginx.pid")):
            stop_nginx(d)
        shutil.rmtree(d, ignore_errors=True)
