"""Prometheus metrics: /metrics on the real stack, read as Prometheus reads
it (promtool's linter, then a real Prometheus scraping it), and the alert
rules shipped in conf/prometheus checked and unit-tested by promtool.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROM_DIR = os.path.join(ROOT, "conf", "prometheus")
ALLOC = os.path.join(ROOT, "gameserver", "build", "game-allocate")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(stack):
    r = requests.get(stack.url("/metrics"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.text


def samples(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(stack, name, **labels):
    return samples(scrape(stack)).get((name, frozenset(labels.items())))


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def test_metrics_pass_promtool_lint(stack):
    text = scrape(stack)
    r = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # no player ids, tokens or other unbounded values in labels
    assert not re.search(r'[0-9a-f]{8}-[0-9a-f]{4}-', text)


def test_only_get(stack):
    r = requests.post(stack.url("/metrics"), data="x", timeout=5)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_requests_counted_by_location_and_class(stack):
    before = value(stack, "game_http_requests_total",
                   endpoint="/healthz", code="2xx") or 0
    for _ in range(7):
        requests.get(stack.url("/healthz"), timeout=5)
    nf_before = value(stack, "game_http_requests_total",
                      endpoint="/", code="4xx") or 0
    requests.get(stack.url("/no/such/thing"), timeout=5)

    s = samples(scrape(stack))
    assert s[("game_http_requests_total",
              frozenset({("endpoint", "/healthz"), ("code", "2xx")}))] \
        == before + 7
    assert s[("game_http_requests_total",
              frozenset({("endpoint", "/"), ("code", "4xx")}))] \
        == nf_before + 1
    # the histogram's +Inf bucket and count agree with the counter's sum
    total = sum(v for (n, l), v in s.items()
                if n == "game_http_requests_total"
                and ("endpoint", "/healthz") in l)
    assert s[("game_http_request_duration_seconds_count",
              frozenset({("endpoint", "/healthz")}))] == total
    assert s[("game_http_request_duration_seconds_bucket",
              frozenset({("endpoint", "/healthz"), ("le", "+Inf")}))] \
        == total


def test_login_outcomes(stack):
    failures = value(stack, "game_auth_logins_total", outcome="failure")
    invalid = value(stack, "game_auth_logins_total", outcome="invalid")
    requests.post(stack.url("/auth/login"), timeout=10,
                  json={"login": "nobody-" + uuid.uuid4().hex[:8],
                        "password": "not the password at all"})
    requests.post(stack.url("/auth/login"), timeout=10, json={"login": 3})
    assert value(stack, "game_auth_logins_total",
                 outcome="failure") == failures + 1
    assert value(stack, "game_auth_logins_total",
                 outcome="invalid") == invalid + 1
    # every hash it queued has come back
    assert value(stack, "game_auth_hash_tasks") == 0


def test_purchase_outcomes(stack):
    from econ_helpers import buy
    from mm_helpers import device_player

    def outcomes():
        return {o: value(stack, "game_econ_purchases_total", outcome=o)
                for o in ("completed", "replayed", "refused")}

    before = outcomes()
    _, auth = device_player(stack)
    key = uuid.uuid4().hex
    assert buy(stack, auth, key=key).status_code in (200, 201)
    r = buy(stack, auth, key=key)
    assert r.headers.get("Idempotent-Replayed") == "true"
    assert buy(stack, auth, item="no.such.item").status_code in (404, 422)

    after = outcomes()
    assert after["completed"] == before["completed"] + 1
    assert after["replayed"] == before["replayed"] + 1
    assert after["refused"] == before["refused"] + 1


def nginx_workers(stack):
    out = subprocess.run(["pgrep", "-P", str(stack.pid("nginx"))],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_counters_survive_reload_and_a_killed_worker(stack):
    for _ in range(5):
        requests.get(stack.url("/healthz"), timeout=5)
    before = value(stack, "game_http_requests_total",
                   endpoint="/healthz", code="2xx")

    old = set(nginx_workers(stack))
    r = stack.nginx("-s", "reload")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not (set(nginx_workers(stack)) & old), 15,
             "the old workers to exit")
    assert value(stack, "game_http_requests_total",
                 endpoint="/healthz", code="2xx") >= before

    # every worker's pool is up: the gauge sums them
    conns = wait_for(lambda: value(stack, "game_pg_pool_connections",
                                   pool="main"), 10, "connections")

    victim = nginx_workers(stack)[0]
    stack.killed_workers.append(victim)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in nginx_workers(stack)
             and len(nginx_workers(stack)) >= 2, 10, "a new worker")
    stack.wait_ready()
    # what the killed worker counted is still in the sum
    assert value(stack, "game_http_requests_total",
                 endpoint="/healthz", code="2xx") >= before
    # and its gauges are not: connections are those of live workers only
    wait_for(lambda: value(stack, "game_pg_pool_connections", pool="main")
             == conns, 10, "the pool gauge to count live workers only")


def test_pool_gauges_follow_an_outage(ready_stack):
    s = ready_stack
    up = value(s, "game_redis_pool_connections", pool="main")
    assert up > 0
    rejected = value(s, "game_redis_pool_rejected_total", pool="main")
    reconnects = value(s, "game_redis_pool_reconnects_total", pool="main")

    s.run("stop", "redis")
    wait_for(lambda: value(s, "game_redis_pool_connections", pool="main")
             == 0, 10, "the Redis gauge to drop to 0")
    # a request that needs Redis is refused at once, and counted
    requests.post(s.url("/auth/device"), timeout=10,
                  json={"device_id": "metrics-" + uuid.uuid4().hex})
    assert value(s, "game_redis_pool_rejected_total", pool="main") \
        > rejected
    assert value(s, "game_redis_pool_reconnects_total", pool="main") \
        > reconnects
    # the scrape still answers, and says the matchmaker's view is missing
    assert value(s, "game_mm_collector_up") == 0

    s.run("start", "redis")
    s.wait_ready()
    wait_for(lambda: value(s, "game_redis_pool_connections", pool="main")
             == up, 10, "the Redis gauge to come back")
    assert value(s, "game_mm_collector_up") == 1


def allocate(stack, *args):
    r = subprocess.run([ALLOC, "--redis", "127.0.0.1:%d" % stack.redis_port,
                        "--prefix", "game:"] + list(args),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_fleet_and_queues_from_redis(stack):
    # servers in a region no mode serves, so that the matchmaking tests
    # sharing this stack never get them: they count as region "other"
    ids = ["metrics-%s-%d" % (uuid.uuid4().hex[:6], i) for i in range(3)]
    tokens = []
    try:
        for i, sid in enumerate(ids):
            out = allocate(stack, "register", "--id", sid, "--addr",
                           "127.0.0.1", "--port", str(40000 + i),
                           "--region", "nowhere", "--mode", "dm",
                           "--state", "Ready",
                           "--ttl", "60000" if i < 2 else "300")
            tokens.append(re.search(r'"token":"([^"]+)"', out).group(1))

        def fleet():
            return (value(stack, "game_fleet_servers", region="other",
                          state="Ready"),
                    value(stack, "game_fleet_servers", region="other",
                          state="Lost"))
        # the third one's heartbeat expires: it counts as Lost
        wait_for(lambda: fleet() == (2, 1), 10, "2 Ready and 1 Lost")
    finally:
        for sid, token in zip(ids, tokens):
            allocate(stack, "deregister", "--id", sid, "--token", token)

    # every declared queue is reported, none that is not
    queues = {dict(l)["queue"] for (n, l) in samples(scrape(stack))
              if n == "game_mm_tickets_queued"}
    assert {"duel:local", "squad:local", "tiny:far"} <= queues
    assert all(":" in q for q in queues)


def test_event_bus_consumers_reported(stack):
    s = samples(scrape(stack))
    consumers = {dict(l)["consumer"] for (n, l) in s
                 if n == "game_bus_acked_total"}
    assert consumers, "no event-bus consumer reported"
    # a group Redis does not have yet (or lost, until the bus makes it
    # again) has no lag to report; the others do
    lag = {dict(l)["consumer"] for (n, l) in s if n == "game_bus_lag"}
    assert lag and lag <= consumers


# --- promtool on the shipped rules, and a real Prometheus ----------------

def test_alert_rules_check_and_unit_tests():
    r = subprocess.run(["promtool", "check", "rules", "alerts.yml"],
                       cwd=PROM_DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"],
                       cwd=PROM_DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def prometheus(stack):
    port = stack.http_port + 9
    work = tempfile.mkdtemp(prefix="game-prom.")
    conf = os.path.join(work, "prometheus.yml")
    shutil.copy(os.path.join(PROM_DIR, "alerts.yml"), work)
    with open(conf, "w") as f:
        f.write("""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: game-nginx
    static_configs:
      - targets: ["127.0.0.1:%d"]
""" % stack.http_port)
    log = open(os.path.join(work, "prometheus.log"), "w")
    p = subprocess.Popen(
        ["prometheus", "--config.file", conf,
         "--storage.tsdb.path", os.path.join(work, "data"),
         "--web.listen-address", "127.0.0.1:%d" % port],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        yield "http://127.0.0.1:%d" % port
    finally:
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def query(prom, q):
    try:
        r = requests.get(prom + "/api/v1/query", params={"query": q},
                         timeout=5)
    except requests.RequestException:
        return None
    if r.status_code != 200:
        return None
    return r.json()["data"]["result"]


def test_a_real_prometheus_scrapes_the_stack(stack, prometheus):
    for _ in range(10):
        requests.get(stack.url("/healthz"), timeout=5)

    up = wait_for(lambda: query(prometheus, 'up{job="game-nginx"} == 1'),
                  60, "Prometheus to scrape the stack")
    assert up[0]["value"][1] == "1"

    healthz = wait_for(lambda: query(
        prometheus, 'game_http_requests_total{endpoint="/healthz",'
                    'code="2xx"} >= 10'), 30, "the request counter")
    assert float(healthz[0]["value"][1]) >= 10

    pools = wait_for(lambda: query(
        prometheus, 'sum by (pool) (game_pg_pool_connections) > 0'), 30,
        "the pool gauge")
    assert pools[0]["metric"]["pool"] == "main"

    # a histogram Prometheus can take a quantile of
    q = wait_for(lambda: query(
        prometheus, 'histogram_quantile(0.99, sum by (le) '
                    '(game_http_request_duration_seconds_bucket))'), 30,
        "a latency quantile")
    assert float(q[0]["value"][1]) >= 0

    # the rules loaded, and none is firing on a healthy stack
    r = requests.get(prometheus + "/api/v1/rules", timeout=5).json()
    names = {rule["name"] for g in r["data"]["groups"] for rule in g["rules"]}
    assert {"GameNoReadyServers", "GamePostgresPoolDown",
            "GameEventBusLag"} <= names
    firing = [a for a in requests.get(prometheus + "/api/v1/alerts",
                                      timeout=5).json()["data"]["alerts"]
              if a["labels"]["alertname"] in ("GamePostgresPoolDown",
                                              "GameRedisPoolDown")]
    assert not firing, firing


def test_json_access_log(stack):
    from mm_helpers import device_player

    pid, auth = device_player(stack)
    r = requests.get(stack.url("/player/me"), headers=auth, timeout=10)
    assert r.status_code == 200
    # hostile bytes in the places a log line quotes
    requests.get(stack.url('/x"y\\z'), timeout=5,
                 headers={"User-Agent": 'evil", "status":200, "x":"\\\x01'})

    path = os.path.join(stack.var, "log", "nginx-access.json")

    def lines():
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]

    # every line is one JSON object, whatever the client sent
    mine = wait_for(lambda: [l for l in lines()
                             if l["player_id"] == pid
                             and l["endpoint"] == "/player/me"], 5,
                    "the request's log line")
    assert mine[0]["status"] == 200 and mine[0]["method"] == "GET"
    assert len(mine[0]["request_id"]) == 32
    evil = [l for l in lines() if l["user_agent"].startswith('evil"')]
    assert evil and evil[-1]["uri"] == '/x"y\\z'
    assert evil[-1]["endpoint"] == "/" and evil[-1]["status"] == 404


def test_websockets_counted(stack):
    import websocket
    from mm_helpers import device_player
    from rt_helpers import welcomed

    sockets = value(stack, "game_rt_sockets")
    players = value(stack, "game_rt_players")
    policy = value(stack, "game_rt_closes_total", code="1002")

    _, auth = device_player(stack)
    ws, _ = welcomed(stack, auth)
    try:
        wait_for(lambda: value(stack, "game_rt_sockets") == sockets + 1, 10,
                 "the socket to be counted")
        assert value(stack, "game_rt_players") == players + 1
        # an unmasked frame from a client: the server closes with 1002
        ws.sock.send(b"\x81\x02hi")
        wait_for(lambda: value(stack, "game_rt_closes_total", code="1002")
                 == policy + 1, 10, "the close to be counted")
    finally:
        try:
            ws.close()
        except (websocket.WebSocketException, OSError):
            pass
    wait_for(lambda: value(stack, "game_rt_sockets") == sockets
             and value(stack, "game_rt_players") == players, 10,
             "the socket to be forgotten")


def test_telemetry_counted(stack):
    from mm_helpers import device_player
    from tel_helpers import event

    accepted = value(stack, "game_tel_events_total", outcome="accepted")
    rejected = value(stack, "game_tel_events_total", outcome="rejected")
    _, auth = device_player(stack)
    good = event()
    r = requests.post(stack.url("/game/telemetry"), headers=auth, timeout=10,
                      json={"events": [good, {"event_id": "not a uuid"}]})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    wait_for(lambda: value(stack, "game_tel_events_total",
                           outcome="accepted") == accepted + 1
             and value(stack, "game_tel_events_total",
                       outcome="rejected") == rejected + 1, 10,
             "the events to be counted")
    assert value(stack, "game_tel_collector_up") == 1
    assert value(stack, "game_tel_stream_entries", stream="clients") >= 0


def test_json_access_log_times_postgresql_and_redis(stack):
    """pg_time and redis_time: how long the request waited on each, which
    the test makes long on purpose (a row lock held, Redis paused), so
    that the line can tell it from the rest of request_time."""
    import threading
    import uuid

    import psycopg2
    import redis

    from auth_helpers import bearer, new_player

    t, _, _ = new_player(stack)
    pid, auth = t["player_id"], bearer(t["access_token"])
    path = os.path.join(stack.var, "log", "nginx-access.json")

    def line(endpoint, method):
        with open(path) as f:
            found = [json.loads(l) for l in f if l.strip()]
        found = [l for l in found if l["player_id"] == pid
                 and l["endpoint"] == endpoint and l["method"] == method]
        return found[-1] if found else None

    # the rename waits for the players row the test has locked
    conn = psycopg2.connect(stack.pg_dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1 FROM players WHERE id = %s FOR UPDATE", (pid,))
        got = {}
        req = threading.Thread(target=lambda: got.update(r=requests.patch(
            stack.url("/player/me"), headers=auth, timeout=10,
            json={"username": "t" + uuid.uuid4().hex[:12]})))
        req.start()
        time.sleep(0.6)
        conn.commit()
        req.join()
    finally:
        conn.close()
    assert got["r"].status_code == 200, got["r"].text
    l = wait_for(lambda: line("/player/me", "PATCH"), 5, "the PATCH's line")
    assert 0.5 <= l["pg_time"] <= l["request_time"], l

    # the matchmaker's status waits for a paused Redis (under the pool's
    # command_timeout of test.conf)
    redis.Redis(port=stack.redis_port).execute_command("CLIENT", "PAUSE",
                                                       "300", "ALL")
    r = requests.get(stack.url("/matchmaking/status"), headers=auth,
                     timeout=10)
    assert r.status_code in (200, 404), r.text
    l = wait_for(lambda: line("/matchmaking/status", "GET"), 5,
                 "the status line")
    assert 0.2 <= l["redis_time"] <= l["request_time"], l
