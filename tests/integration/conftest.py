"""Fixtures for the integration tests: one real stack per test session.

The stack is PostgreSQL, Redis and nginx with our modules, started by
scripts/stack in a throwaway folder on the test ports (conf/test.conf), and
torn down at the end even when tests fail.  Set GAME_TEST_KEEP=1 to leave
it running for a look after a failure.
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

import contract

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Stack:
    def __init__(self, var):
        self.root = ROOT
        self.var = var
        self.http_port = int(os.environ.get("GAME_TEST_HTTP_PORT", "18080"))
        self.https_port = int(os.environ.get("GAME_TEST_HTTPS_PORT", "18443"))
        self.pg_port = int(os.environ.get("GAME_TEST_PG_PORT", "25432"))
        self.redis_port = int(os.environ.get("GAME_TEST_REDIS_PORT", "26379"))
        self.pg_dsn = "host=127.0.0.1 port=%d dbname=game user=game" % self.pg_port
        self.killed_workers = []
        self.base_url = "http://127.0.0.1:%d" % self.http_port
        self.https_url = "https://127.0.0.1:%d" % self.https_port
        self.env = dict(
            os.environ,
            GAME_VAR=var,
            GAME_CONF=os.path.join(ROOT, "conf", "test.conf"),
            GAME_HTTP_PORT=str(self.http_port),
            GAME_HTTPS_PORT=str(self.https_port),
            GAME_PG_PORT=str(self.pg_port),
            GAME_REDIS_PORT=str(self.redis_port),
            GAME_REDIS_SAVE="no",
            # the game server tests run fleets of their own, on their ports
            GAME_FLEET="no",
            GAME_PG_FSYNC="off",
            GAME_PG_DSN=self.pg_dsn,
        )

    def run(self, *args, check=True):
        """Run scripts/stack with the test environment."""
        return subprocess.run(
            [os.path.join(ROOT, "scripts", "stack")] + list(args),
            env=self.env, check=check, capture_output=True, text=True)

    def url(self, path):
        return self.base_url + path

    @property
    def nginx_conf(self):
        return os.path.join(self.var, "nginx", "nginx.conf")

    def nginx(self, *args):
        return subprocess.run(
            ["nginx", "-p", os.path.join(self.var, "nginx"),
             "-c", self.nginx_conf,
             "-e", os.path.join(self.var, "log", "nginx-error.log")]
            + list(args), capture_output=True, text=True)

    def pid(self, name):
        path = {"nginx": "nginx/nginx.pid", "redis": "redis/redis.pid",
                "postgres": "pg/data/postmaster.pid"}[name]
        with open(os.path.join(self.var, path)) as f:
            return int(f.readline())

    def assert_clean_error_log(self):
        """nginx logged nothing an operator would have to act on: no
        alert, crit or emerg line, no worker that died on a signal, except
        the workers a test killed on purpose (self.killed_workers)."""
        path = os.path.join(self.var, "log", "nginx-error.log")
        bad = []
        with open(path, errors="replace") as f:
            for line in f:
                if any("worker process %d exited on signal 9" % pid in line
                       for pid in self.killed_workers):
                    continue
                if ("[alert]" in line or "[crit]" in line or "[emerg]" in line
                        or "exited on signal" in line):
                    bad.append(line.rstrip())
        assert not bad, "nginx error log:\n" + "\n".join(bad[:20])

    def wait_ready(self, timeout=10.0):
        """Poll /readyz until 200; return the seconds it took."""
        start = time.monotonic()
        while True:
            try:
                if requests.get(self.url("/readyz"), timeout=2).status_code == 200:
                    return time.monotonic() - start
            except requests.RequestException:
                pass
            if time.monotonic() - start > timeout:
                raise AssertionError("stack not ready after %.1fs" % timeout)
            time.sleep(0.05)


def udp_ports(offset, count):
    """UDP ports for the game servers a test file starts: [offset, offset +
    count) of this run's block of 300.  Runs side by side on one machine
    (GAME_TEST_HTTP_PORT differs) get different blocks, below the ephemeral
    range so that no client socket holds one; GAME_TEST_UDP_BASE sets the
    block's start.  Without either, the block starts at 21000."""
    base = os.environ.get("GAME_TEST_UDP_BASE")
    if base is None and "GAME_TEST_HTTP_PORT" in os.environ:
        base = 22000 + (int(os.environ["GAME_TEST_HTTP_PORT"]) // 10
                        % 30) * 300
    base = int(base or 21000)
    assert 0 <= offset and offset + count <= 300
    return range(base + offset, base + offset + count)


def pytest_configure(config):
    """Record the stack's answers for the API contract check
    (contract.py, test_zz_contract.py) from the first request on."""
    http = int(os.environ.get("GAME_TEST_HTTP_PORT", "18080"))
    https = int(os.environ.get("GAME_TEST_HTTPS_PORT", "18443"))
    contract.install(["http://127.0.0.1:%d" % http,
                      "https://127.0.0.1:%d" % https])


def pytest_collection_modifyitems(session, config, items):
    """The contract check runs last, after every answer was recorded."""
    last = [i for i in items if i.fspath.basename == "test_zz_contract.py"]
    items[:] = [i for i in items if i not in last] + last


def pytest_collection_finish(session):
    """Every operation must have been exercised only when every test
    module runs (not for a single file or a -k selection)."""
    here = os.path.dirname(os.path.abspath(__file__))
    modules = {f for f in os.listdir(here)
               if f.startswith("test_") and f.endswith(".py")}
    ran = {i.fspath.basename for i in session.items}
    session.config._contract_whole_suite = modules <= ran


def pytest_unconfigure(config):
    path = os.environ.get("GAME_TEST_CONTRACT_DUMP")
    if path and contract.RECORDER is not None:
        contract.dump(path)


@pytest.fixture(scope="session")
def stack():
    var = tempfile.mkdtemp(prefix="game-test.")
    os.chmod(var, 0o755)
    s = Stack(var)
    try:
        r = s.run("up", check=False)
        if r.returncode != 0:
            raise RuntimeError("stack up failed:\n%s\n%s" % (r.stdout, r.stderr))
        s.wait_ready()
        yield s
        s.assert_clean_error_log()
    finally:
        if os.environ.get("GAME_TEST_KEEP") != "1":
            s.run("down", check=False)
            shutil.rmtree(var, ignore_errors=True)


@pytest.fixture
def ready_stack(stack):
    """The stack, guaranteed ready before and after the test."""
    stack.run("start", "postgres")
    stack.run("start", "redis")
    stack.wait_ready()
    yield stack
    stack.run("start", "postgres")
    stack.run("start", "redis")
    stack.wait_ready()
