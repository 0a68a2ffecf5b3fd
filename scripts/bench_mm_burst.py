#!/usr/bin/python3
"""make bench: a burst of matches formed in one matcher pass, and what it
does to the event loop.

    bench_mm_burst.py BASE_URL REDIS_PORT SECONDS [MATCHES]

Registers MATCHES Ready servers of the bench's "burst" mode (allocator
prefix game:), measures GET /readyz with wrk for SECONDS while nothing else
happens, then queues 2 x MATCHES duel tickets (join.lua, as nginx runs it)
while holding the queue's lease, and measures again while it lets the
lease go: the matcher then forms every match in one pass.  Prints:

    mm_burst MATCHES FORM_MS READYZ_P99_MS_BURST READYZ_P99_MS_QUIET ERRORS

FORM_MS is from the lease's release to the last ticket matched (a matcher
pass runs every second, so up to a second of it is waiting for the pass).
"""

import re
import subprocess
import sys
import threading
import time
import uuid

import redis

from game_lua import alloc_script, mm_script

QUEUE = "burst:local"


def wrk(url, seconds, out):
    """wrk's p99 (ms) and its errors, into out."""
    text = subprocess.run(["wrk", "-t1", "-c16", "-d%ds" % seconds,
                           "--latency", url], capture_output=True,
                          text=True).stdout
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    out["p99"] = float(p99.group(1)) * scale[p99.group(2)] if p99 else -1
    errors = 0
    for m in re.finditer(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(m.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+),"
                     r" timeout (\d+)", text)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    out["errors"] = errors


def main():
    base, port, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    matches = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    r = redis.Redis(port=port, decode_responses=True)

    register = r.register_script(alloc_script("register"))
    pipe = r.pipeline(transaction=False)
    for i in range(matches):
        sid = "burst-%d" % i
        register(keys=["game:server:" + sid, "game:hb:" + sid],
                 args=["game:", sid, "tok", "127.0.0.1", 20000 + i % 10000,
                       "local", "burst", "", "h%d" % (i % 50), 0, "Ready",
                       600000], client=pipe)
    pipe.execute()

    quiet = {}
    wrk(base + "/readyz", seconds, quiet)

    # the queue fills while the bench holds its lease, so that the
    # matcher meets every ticket in one pass once the lease is free
    lease = "mm:lease:" + QUEUE
    r.hset(lease, mapping={"holder": "bench", "fence": "0"})
    r.pexpire(lease, 120000)
    join = r.register_script(mm_script("join"))
    pipe = r.pipeline(transaction=False)
    for _ in range(2 * matches):
        join(args=["mm:", str(uuid.uuid4()), QUEUE, "1500", 600000, 1000000,
                   120000, 1000000, 60000, str(uuid.uuid4())], client=pipe)
    pipe.execute()

    burst = {}
    measuring = threading.Thread(target=wrk,
                                 args=(base + "/readyz", seconds, burst))
    measuring.start()
    time.sleep(1)
    r.delete(lease)
    t0 = time.monotonic()

    # every ticket matched: the queue's live set empties
    deadline = t0 + 60
    while r.zcard("mm:live:" + QUEUE) > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    form_ms = (time.monotonic() - t0) * 1000
    formed = r.zcard("mm:active:" + QUEUE)
    measuring.join()

    print("mm_burst %d %.0f %.2f %.2f %d" % (formed, form_ms, burst["p99"],
                                             quiet["p99"], burst["errors"]))


if __name__ == "__main__":
    main()
