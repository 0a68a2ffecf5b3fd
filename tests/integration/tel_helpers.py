"""Helpers for the telemetry tests: batches of events, the admin's and the
game servers' ways in, and a way to hold the writer back."""

import contextlib
import json
import os
import re
import time
import uuid

import psycopg2
import redis
import requests

from auth_helpers import psql

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                  r"[0-9a-f]{12}$")


def now_ms():
    return int(time.time() * 1000)


def event(type_="client.perf", ts=None, payload=None, **extra):
    e = {"event_id": str(uuid.uuid4()), "type": type_,
         "ts": now_ms() if ts is None else ts,
         "payload": {"fps": 60, "ping_ms": 20} if payload is None
         else payload}
    e.update(extra)
    return e


def events(n, **kw):
    return [event(**kw) for _ in range(n)]


def send(s, auth, evs, timeout=20, **kw):
    return requests.post(s.url("/game/telemetry"), json={"events": evs},
                         headers=auth, timeout=timeout, **kw)


def admin(s):
    with open(os.path.join(s.var, "keys", "tel-admin.key")) as f:
        return {"Authorization": "Bearer " + f.read().strip()}


def stats(s):
    """The counters; a Redis connection that a test just broke answers
    503 for a moment, so that is asked again."""
    end = time.monotonic() + 10
    while True:
        r = requests.get(s.url("/admin/telemetry/stats"), headers=admin(s),
                         timeout=10)
        if r.status_code != 503 or time.monotonic() > end:
            assert r.status_code == 200, r.text
            return r.json()
        time.sleep(0.1)


def counter(s, name):
    return stats(s)["counters"].get(name, 0)


def rds(s):
    return redis.Redis(port=s.redis_port, decode_responses=True)


def copies(s, ids):
    """event_id -> how many rows game_events holds for it (ids that are
    not UUIDs have none)."""
    ids = [i for i in ids if isinstance(i, str) and UUID.match(i)]
    rows = psql(s, "SELECT event_id::text, count(*) FROM game_events "
                   "WHERE event_id = ANY(%s::uuid[]) GROUP BY event_id",
                ids)
    return {i: n for i, n in rows}


def wait_written(s, ids, timeout=60):
    """Until every id is in game_events; then exactly once each."""
    ids = list(ids)
    end = time.monotonic() + timeout
    while True:
        got = copies(s, ids)
        if len(got) == len(ids):
            assert all(n == 1 for n in got.values()), \
                {i: n for i, n in got.items() if n != 1}
            return got
        assert time.monotonic() < end, \
            "%d of %d events written" % (len(got), len(ids))
        time.sleep(0.2)


def wait_until(cond, timeout=30, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < end, "no %s after %ss" % (what, timeout)
        time.sleep(0.1)


def nginx_workers(s):
    return {int(p) for p in os.popen(
        "ps -o pid= --ppid %d" % s.pid("nginx")).read().split()}


def reload_nginx(s, conf):
    """nginx with this configuration, once its old workers are gone (they
    finish what they were writing first)."""
    old = nginx_workers(s)
    with open(s.nginx_conf, "w") as f:
        f.write(conf)
    r = s.nginx("-s", "reload")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: not (nginx_workers(s) & old), timeout=60,
               what="the old workers gone")
    s.wait_ready()


@contextlib.contextmanager
def writer_mode(s, mode):
    """The writer loads by COPY ("copy": test.conf's tel_copy pool, typed
    rows) or by one statement with a jsonb parameter ("jsonb": the same
    configuration without game_tel_writer_copy_pg) while this holds."""
    if mode == "copy":
        yield mode
        return
    with open(s.nginx_conf) as f:
        original = f.read()
    changed = re.sub(r"\n *game_tel_writer_copy_pg +\S+;\n", "\n", original)
    assert changed != original, "test.conf names game_tel_writer_copy_pg"
    reload_nginx(s, changed)
    try:
        yield mode
    finally:
        reload_nginx(s, original)


@contextlib.contextmanager
def writer_held(s):
    """The writer cannot commit while this holds tel_seen_gen, which
    tel_write() reads first: its statements wait, time out and are tried
    again, and the entries stay on the streams."""
    conn = psycopg2.connect(host="127.0.0.1", port=s.pg_port, dbname="game",
                            user="postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE tel_seen_gen IN ACCESS EXCLUSIVE MODE")
            yield conn
    finally:
        conn.rollback()
        conn.close()


def writers_waiting(s):
    """Writer statements of nginx waiting for a lock right now."""
    return psql(s, "SELECT count(*) FROM pg_stat_activity "
                   "WHERE application_name LIKE 'nginx-game%%' "
                   "AND query LIKE '%%tel_write%%' AND wait_event_type = 'Lock'"
                )[0][0]


def server_batch(s, server_id, evs, raw=None):
    """What a game server's agent adds to the servers' stream."""
    body = raw if raw is not None else json.dumps({"events": evs})
    return rds(s).xadd("tel:server", {"s": "server:" + server_id,
                                      "n": str(len(evs)), "b": body})


def server_event(type_, player, payload, ts=None):
    e = event(type_, ts=ts, payload=payload)
    e["player_id"] = player
    return e
