"""make bench: telemetry's writer, events/s durably written.

    bench_tel.py REDIS_PORT PG_PORT PLAYER EVENTS

Waits for the stream to drain (what ingest's row left), then puts EVENTS
fresh events on tel:events in batches of 100, as ingest would (the same
entry format: s, p, n, b), and measures the time from the first entry
until the writer's "written" counter has grown by EVENTS: the writer reads
while the entries arrive, so the time is the writer's.  The baseline is
PostgreSQL's COPY of the same rows into the same table in one statement,
without deduplication, on the same machine in the same run.

Prints "tel_writer <events/s> <copy rows/s> <peak backlog entries>".
"""

import io
import json
import sys
import time
import uuid

import psycopg2
import redis


def main():
    rport, pport, player, n = (int(sys.argv[1]), int(sys.argv[2]),
                               sys.argv[3], int(sys.argv[4]))
    r = redis.Redis(port=rport, decode_responses=True)

    end = time.monotonic() + 300
    while r.xlen("tel:events") > 0:
        if time.monotonic() > end:
            sys.exit("bench_tel: the backlog never drained")
        time.sleep(0.2)

    now = int(time.time() * 1000)
    batches = []
    for b in range(n // 100):
        evs = [{"event_id": str(uuid.uuid4()), "type": "client.perf",
                "ts": now, "payload": {"fps": 60, "ping_ms": 20 + i}}
               for i in range(100)]
        batches.append(json.dumps({"events": evs}, separators=(",", ":")))

    before = int(r.hget("tel:stats", "written") or 0)
    peak = 0
    start = time.monotonic()
    for k in range(0, len(batches), 50):
        p = r.pipeline(transaction=False)
        for body in batches[k:k + 50]:
            p.xadd("tel:events", {"s": "client", "p": player, "n": "100",
                                  "b": body})
        p.execute()
        peak = max(peak, r.xlen("tel:events"))
    total = len(batches) * 100
    end = time.monotonic() + 600
    while int(r.hget("tel:stats", "written") or 0) - before < total:
        if time.monotonic() > end:
            sys.exit("bench_tel: the writer did not finish")
        peak = max(peak, r.xlen("tel:events"))
        time.sleep(0.05)
    took = time.monotonic() - start

    # the baseline: COPY of as many rows into game_events
    at = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(now / 1000))
    buf = io.StringIO()
    for i in range(total):
        buf.write("%s\t%s\tclient.perf\t{\"fps\":60,\"ping_ms\":%d}\t%s\t%d"
                  "\tclient\n" % (at, player, i % 100, uuid.uuid4(), i))
    buf.seek(0)
    conn = psycopg2.connect(host="127.0.0.1", port=pport, dbname="game",
                            user="game")
    with conn, conn.cursor() as cur:
        t0 = time.monotonic()
        cur.copy_expert("COPY game_events (occurred_at, player_id, kind, "
                        "payload, event_id, seq, source) FROM STDIN", buf)
        conn.commit()
        copy_took = time.monotonic() - t0
    conn.close()

    print("tel_writer %.0f %.0f %d" % (total / took, total / copy_took, peak))


if __name__ == "__main__":
    main()
