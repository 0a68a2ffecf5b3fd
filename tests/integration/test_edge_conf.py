"""conf/production-edge.conf, run for real.

The edge is rendered as `scripts/stack check-edge` renders it (throwaway
secrets and certificate), its two listen ports moved to free test ports,
and started as an nginx of its own.  Its dependencies are addresses of a
production network that do not answer here: what is checked is what the
edge does before them (TLS, HTTP/2, HSTS, redirects, limits on /auth/*,
which client address counts, body limits).
"""

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

import pytest
import requests
import urllib3

# the edge's certificate is a throwaway one for api.example.com
pytestmark = pytest.mark.filterwarnings(
    "ignore::urllib3.exceptions.InsecureRequestWarning")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.environ.get("GAME_MODULES", os.path.join(ROOT, "build", "modules"))


@pytest.fixture(scope="module")
def edge(stack):
    d = tempfile.mkdtemp(prefix="game-edge.")
    env = dict(os.environ, GAME_VAR=d, GAME_MODULES=MODULES)
    r = subprocess.run([os.path.join(ROOT, "scripts", "stack"), "check-edge"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    http_port, https_port = stack.http_port + 8, stack.https_port + 8
    e = os.path.join(d, "edge")
    conf = os.path.join(e, "nginx.conf")
    with open(conf) as f:
        text = f.read()
    for old, new in [
            ("listen  80 default_server;",
             "listen  127.0.0.1:%d default_server;" % http_port),
            ("listen  443 ssl http2 default_server;",
             "listen  127.0.0.1:%d ssl http2 default_server;" % https_port)]:
        assert old in text
        text = text.replace(old, new)
    with open(conf, "w") as f:
        f.write(text)

    pid = os.path.join(e, "nginx.pid")
    subprocess.run(["nginx", "-p", e, "-c", conf, "-e",
                    os.path.join(e, "log", "error.log"),
                    "-g", "pid %s;" % pid], check=True)
    base = "https://127.0.0.1:%d" % https_port
    for _ in range(50):
        try:
            requests.get(base + "/healthz", verify=False, timeout=2)
            break
        except requests.RequestException:
            time.sleep(0.1)
    try:
        yield {"http": "http://127.0.0.1:%d" % http_port, "https": base,
               "port": https_port, "dir": e}
    finally:
        with open(pid) as f:
            master = int(f.read())
        os.kill(master, signal.SIGQUIT)
        for _ in range(100):
            if not os.path.exists("/proc/%d" % master):
                break
            time.sleep(0.05)
        shutil.rmtree(d, ignore_errors=True)


def curl(*args):
    return subprocess.run(["curl", "-sk", "--max-time", "10"] + list(args),
                          capture_output=True, text=True)


def test_plain_http_redirects_to_https(edge):
    r = requests.get(edge["http"] + "/healthz", allow_redirects=False,
                     timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"].startswith("https://")


def test_https_speaks_http2_with_hsts(edge):
    r = curl("--http2", "-D", "-", "-o", "/dev/null", edge["https"] + "/healthz")
    head = r.stdout.lower()
    assert head.startswith("http/2 200"), r.stdout + r.stderr
    assert "strict-transport-security: max-age=63072000" in head
    assert "x-content-type-options: nosniff" in head
    # the id of the request's JSON log line, for support tickets
    assert re.search(r"^x-request-id: [0-9a-f]{32}\r?$", head, re.M), head
    assert "server: nginx\n" in head       # no version


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2,
                                     ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_are_spoken(edge, version):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    import socket
    with socket.create_connection(("127.0.0.1", edge["port"]), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            assert t.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                   ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            assert "GCM" in t.cipher()[0] or "CHACHA20" in t.cipher()[0]


def test_weak_tls_is_refused(edge):
    """Older protocols and TLS 1.2 suites without forward secrecy or AEAD."""
    for args in (["--tlsv1.1", "--tls-max", "1.1"],
                 ["--tls-max", "1.2", "--ciphers", "AES128-SHA256"],
                 ["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-SHA"]):
        r = curl(*args, "-o", "/dev/null", "-w", "%{http_code}",
                 edge["https"] + "/healthz")
        assert r.returncode != 0, (args, r.stdout)


def test_auth_is_rate_limited_per_client_address(edge):
    """Past the burst, /auth/* answers a JSON 429 with Retry-After (and
    HSTS).  X-Forwarded-For from a peer that is not a trusted load balancer
    is ignored: a client cannot buy a fresh bucket by inventing addresses.
    Other paths are not limited."""
    codes = []
    answer = None
    for i in range(40):
        r = requests.post(edge["https"] + "/auth/device", verify=False,
                          timeout=10, json={"device_id": "edge-limit-device"},
                          headers={"X-Forwarded-For": "198.51.100.%d" % i})
        codes.append(r.status_code)
        if r.status_code == 429 and answer is None:
            answer = r
    assert 429 in codes, codes
    assert answer.json()["error"]["code"] == "too_many_requests"
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    assert len(answer.headers["X-Request-Id"]) == 32

    assert all(requests.get(edge["https"] + "/healthz", verify=False,
                            timeout=5).status_code == 200 for _ in range(40))


def test_bodies_are_bounded(edge):
    """Over game_body_limit: our JSON 413, over HTTP/1.1 and HTTP/2."""
    body = json.dumps({"login": "x" * 70000, "password": "y"})
    path = os.path.join(edge["dir"], "big.json")
    with open(path, "w") as f:
        f.write(body)
    time.sleep(2.5)     # the /auth/* bucket of the previous test drains
    for proto in ("--http1.1", "--http2"):
        r = curl(proto, "-o", "-", "-w", "\n%{http_code}",
                 "-H", "Content-Type: application/json",
                 "--data-binary", "@" + path, edge["https"] + "/auth/login")
        text, code = r.stdout.rsplit("\n", 1)
        assert code == "413", (proto, r.stdout, r.stderr)
        assert json.loads(text)["error"]["code"] == "payload_too_large"
