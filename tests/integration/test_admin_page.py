"""The operator page (/admin/) in a real headless Chromium: it loads with
no console error, plots what the running stack's /admin/metrics says, and
leaves a screenshot in build/test-artifacts/ for a person to look at."""

import json
import os
import subprocess
import threading
import time

import requests

from test_metrics import allocate

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECK = os.path.join(ROOT, "admin", "test", "page_check.js")
ARTIFACTS = os.path.join(ROOT, "build", "test-artifacts")


def admin_password(stack):
    with open(os.path.join(stack.var, "keys", "admin.password")) as f:
        return f.read().strip()


def test_admin_needs_its_credentials(stack):
    for path in ("/admin/", "/admin/metrics", "/admin/admin.js"):
        r = requests.get(stack.url(path), timeout=5)
        assert r.status_code == 401, path
        assert "Basic" in r.headers["WWW-Authenticate"]
        r = requests.get(stack.url(path), auth=("admin", "wrong"), timeout=5)
        assert r.status_code == 401, path
    r = requests.get(stack.url("/admin/metrics"),
                     auth=("admin", admin_password(stack)), timeout=5)
    assert r.status_code == 200
    assert "game_http_requests_total" in r.text
    # the services' own operator endpoints keep their own credential
    r = requests.get(stack.url("/admin/catalog"),
                     auth=("admin", admin_password(stack)), timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"]


def test_admin_page_plots_the_running_stack(stack):
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "admin-page.png")
    if os.path.exists(shot):
        os.unlink(shot)

    # traffic while the page samples, so that the request plot has a rate
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            requests.get(stack.url("/healthz"), timeout=5)
            requests.get(stack.url("/no/such/page"), timeout=5)
            time.sleep(0.02)

    # two Ready servers, in a region no mode serves (the matchmaking tests
    # sharing this stack never get them), for the fleet's plot and table
    servers = []
    for i in range(2):
        sid = "admin-page-%d-%d" % (os.getpid(), i)
        out = allocate(stack, "register", "--id", sid, "--addr", "127.0.0.1",
                       "--port", str(41000 + i), "--region", "nowhere",
                       "--mode", "dm", "--state", "Ready", "--ttl", "120000")
        servers.append((sid, json.loads(out)["token"]))

    t = threading.Thread(target=traffic)
    t.start()
    try:
        r = subprocess.run(
            ["node", CHECK, stack.url("/admin/"), "admin",
             admin_password(stack), shot, "40"],
            capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        t.join()
        for sid, token in servers:
            allocate(stack, "deregister", "--id", sid, "--token", token)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])

    assert out["status"] == 200
    assert out["console"] == [], out["console"]
    assert out["pageErrors"] == [], out["pageErrors"]
    assert out["failed"] == [], out["failed"]

    st = out["state"]
    assert st["samples"] >= 3 and st["errors"] == 0
    assert st["charts"] == 5 and st["canvases"] == 5
    # rates need two samples; the request rate saw the traffic
    assert st["series"]["rps"] >= 2
    assert float(st["tiles"]["Requests/s"]) > 1
    assert st["series"]["fleet:Ready"] >= 3
    assert st["fleetRows"] >= 1
    assert st["poolRows"] >= 2 and st["busRows"] >= 1
    assert st["status"].startswith("live")

    assert os.path.getsize(shot) > 20000, "the screenshot looks empty"
