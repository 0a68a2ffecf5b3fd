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
    assert check in body["error"]["message"]
    assert body["checks"][check] == state


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
         "SELECT pid FROM pg_stat_activity WHERE application_name = 'nginx-game'"],
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
         "WHERE application_name = 'nginx-game'"],
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
