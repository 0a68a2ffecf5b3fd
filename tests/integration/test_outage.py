"""Dependency outages: a fast 503 with Retry-After, then recovery by itself.

nginx is never restarted or reloaded here: the pools must notice the loss,
fail requests at once instead of hanging, and reconnect on their own.
"""

import os
import signal
import subprocess
import time

import requests


def readyz(stack):
    # a hung request would hit this client timeout and fail the test
    return requests.get(stack.url("/readyz"), timeout=3)


def assert_not_ready(r, check, state):
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    body = r.json()
    assert body["error"]["code"] == "not_ready"
    assert body["checks"][check] == state
    # the message names a dependency that is not ready: this one, or one
    # that a previous test's outage left reconnecting in the other worker
    # (a pool of one connection, such as tel_copy, takes its time)
    assert any(name in body["error"]["message"]
               for name, st in body["checks"].items() if st != "ok"), body


def test_postgres_down_then_back(ready_stack):
    s = ready_stack
    s.run("stop", "postgres")

    for _ in range(5):
        assert_not_ready(readyz(s), "postgres:main", "unavailable")
    # Redis is unaffected and still reported healthy
    assert readyz(s).json()["checks"]["redis:main"] == "ok"

    s.run("start", "postgres")
    took = s.wait_ready(timeout=10)
    assert took < 5, "recovered only after %.1fs" % took


def test_redis_down_then_back(ready_stack):
    s = ready_stack
    s.run("stop", "redis")

    for _ in range(5):
        assert_not_ready(readyz(s), "redis:main", "unavailable")
    assert readyz(s).json()["checks"]["postgres:main"] == "ok"

    s.run("start", "redis")
    took = s.wait_ready(timeout=10)
    assert took < 5, "recovered only after %.1fs" % took


def test_redis_frozen_times_out_then_recovers(ready_stack):
    """A stopped (SIGSTOP) Redis accepts connections but never answers."""
    s = ready_stack
    pid = s.pid("redis")
    os.kill(pid, signal.SIGSTOP)
    try:
        first = readyz(s)
        assert first.status_code == 503
        assert first.json()["checks"]["redis:main"] in ("timeout", "unavailable")
        # later requests do not pile up behind the frozen server
        for _ in range(3):
            assert readyz(s).status_code == 503
    finally:
        os.kill(pid, signal.SIGCONT)
    s.wait_ready(timeout=10)


def backend_pids(stack):
    out = subprocess.run(
        ["psql", "-X", "-tA", "-h", "127.0.0.1", "-p", str(stack.pg_port),
         "-U", "postgres", "-d", "game", "-c",
         "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'nginx-game%'"],
        check=True, capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_stuck_query_times_out_and_its_connection_is_replaced(ready_stack):
    """Freeze the backends serving nginx: queries time out (503, not a hang),
    the stuck connections are dropped, fresh ones serve again."""
    s = ready_stack
    pids = backend_pids(s)
    assert pids, "nginx holds no PostgreSQL connections"
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        r = readyz(s)
        assert_not_ready(r, "postgres:main", "timeout")
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    s.wait_ready(timeout=10)
    # every connection that timed out was closed, not reused mid-result
    time.sleep(0.5)
    fresh = set(backend_pids(s))
    frozen_still_used = [p for p in pids if p in fresh]
    assert len(frozen_still_used) < len(pids)


def worker_pids(stack):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(stack.pid("nginx"))],
                         check=True, capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def terminate_backends(stack):
    subprocess.run(
        ["psql", "-X", "-qtA", "-h", "127.0.0.1", "-p", str(stack.pg_port),
         "-U", "postgres", "-d", "game", "-c",
         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
         "WHERE application_name LIKE 'nginx-game%'"],
        capture_output=True, text=True)


def test_backends_killed_under_load_never_break_nginx(ready_stack):
    """Every backend nginx holds is terminated again and again while
    /readyz requests flow over pipelined connections.  A query on a dying
    connection fails (503) and is answered once: nginx logs no alert, no
    worker dies, no client connection is dropped, and the pool recovers.

    The race this provokes: a query written to a connection whose backend
    has just gone (the write fails) was once completed twice."""
    import re
    import threading

    s = ready_stack
    workers = worker_pids(s)
    out = {}

    def load():
        out["wrk"] = subprocess.run(
            ["wrk", "-t2", "-c64", "-d6s", s.url("/readyz")],
            capture_output=True, text=True).stdout

    t = threading.Thread(target=load)
    t.start()
    deadline = time.monotonic() + 5.5
    kills = 0
    while time.monotonic() < deadline:
        terminate_backends(s)
        kills += 1
        time.sleep(0.02)
    t.join()

    report = out["wrk"]
    assert int(re.search(r"(\d+) requests in", report).group(1)) > 100, report
    assert "Socket errors" not in report, report
    assert kills > 20
    assert worker_pids(s) == workers, "a worker died"
    s.assert_clean_error_log()
    s.wait_ready(timeout=10)


def pool_size(stack):
    """Workers times the connections of every PostgreSQL pool: the most
    backends nginx may hold."""
    import re
    with open(stack.nginx_conf) as f:
        conf = f.read()
    workers = int(re.search(r"worker_processes\s+(\d+)", conf).group(1))
    total = 0
    for pool in re.findall(r"\bgame_pg_pool\s[^;]*", conf):
        m = re.search(r"connections=(\d+)", pool)
        total += int(m.group(1)) if m else 4
    return workers * total


def psql_admin(stack, sql):
    return subprocess.run(
        ["psql", "-X", "-qtA", "-h", "127.0.0.1", "-p", str(stack.pg_port),
         "-U", "postgres", "-d", "game", "-c", sql],
        check=True, capture_output=True, text=True).stdout


def nginx_backends(stack):
    """(all, waiting on a lock) backends of nginx's pools."""
    out = psql_admin(
        stack,
        "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') "
        "FROM pg_stat_activity WHERE application_name LIKE 'nginx-game%'")
    total, waiting = out.strip().split("|")
    return int(total), int(waiting)


def test_a_stuck_statement_does_not_outlive_the_pool(ready_stack):
    """Another session holds a lock that the profile query needs.  The pool
    gives up after query_timeout (504, or 503 for the queries that shared
    the connection it closed), and the server gives up too: once the
    requests stop, no backend of nginx is left waiting on the lock, and
    backends did not pile up (each timeout replaces a connection) while
    the lock is still held."""
    import threading

    s = ready_stack
    players = []
    for i in range(16):
        r = requests.post(s.url("/auth/device"), timeout=5, json={
            "device_id": "stuck-%s-%02d-device" % (os.getpid(), i)})
        assert r.status_code == 200, r.text
        players.append((r.json()["player_id"], r.json()["access_token"]))

    locker = subprocess.Popen(
        ["psql", "-X", "-qtA", "-h", "127.0.0.1", "-p", str(s.pg_port),
         "-U", "postgres", "-d", "game"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        locker.stdin.write("BEGIN;\nLOCK TABLE players IN ACCESS EXCLUSIVE "
                           "MODE;\nSELECT 'locked';\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "locked"

        codes = []

        def fetch(k):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                pid, token = players[k]
                r = requests.get(s.url("/player/%s/profile" % pid), timeout=10,
                                 headers={"Authorization": "Bearer " + token})
                codes.append(r.status_code)

        threads = [threading.Thread(target=fetch, args=(k,))
                   for k in range(len(players))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert codes and set(codes) <= {503, 504}, codes
        assert 504 in codes

        limit = pool_size(s)
        deadline = time.monotonic() + 8
        while True:
            total, waiting = nginx_backends(s)
            if waiting == 0 and total <= limit:
                break
            assert time.monotonic() < deadline, \
                "%d backends of nginx, %d still waiting on the lock " \
                "(at most %d connections)" % (total, waiting, limit)
            time.sleep(0.2)
    finally:
        locker.stdin.write("ROLLBACK;\n")
        locker.stdin.close()
        locker.wait(timeout=10)
    s.wait_ready(timeout=10)
