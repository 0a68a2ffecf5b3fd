"""A graceful reload under load loses no request.

With Connection: close every request has its own connection, and the new
workers take over the listening sockets: nothing may fail at all.

With keep-alive, the old workers close their *idle* keep-alive connections
when they leave, as nginx always does; a request a client writes on such a
connection at that very moment was never read by nginx, and HTTP/1.1 clients
retry it on a new connection.  wrk counts those as read errors instead of
retrying, so here they are bounded by the number of connections per reload,
and no request may get a non-2xx answer or time out.
"""

import re
import subprocess
import threading
import time

CONNECTIONS = 32
RELOADS = 3


def wrk_during_reloads(stack, *extra):
    out = {}

    def load():
        out["wrk"] = subprocess.run(
            ["wrk", "-t2", "-c%d" % CONNECTIONS, "-d4s"] + list(extra)
            + [stack.url("/readyz")],
            capture_output=True, text=True).stdout

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.7)
    for _ in range(RELOADS):
        r = stack.nginx("-s", "reload")
        assert r.returncode == 0, r.stderr
        time.sleep(0.8)
    t.join()

    report = out["wrk"]
    done = int(re.search(r"(\d+) requests in", report).group(1))
    assert done > 100, report
    return report


def socket_errors(report):
    m = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                  report)
    if m is None:
        return 0, 0, 0, 0
    return tuple(int(x) for x in m.groups())


def test_reload_loses_nothing_without_keepalive(ready_stack):
    report = wrk_during_reloads(ready_stack, "-H", "Connection: close")
    assert "Non-2xx" not in report, report
    assert socket_errors(report) == (0, 0, 0, 0), report


def test_reload_with_keepalive_only_closes_idle_connections(ready_stack):
    report = wrk_during_reloads(ready_stack)
    assert "Non-2xx" not in report, report
    connect, read, write, timeout = socket_errors(report)
    assert connect == 0 and timeout == 0, report
    assert read + write <= CONNECTIONS * RELOADS, report
