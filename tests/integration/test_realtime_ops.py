"""The realtime module under operations: a reload (old workers say 1001
and leave), Redis restarting under the subscription (it comes back by
itself, and resumes its players), and a second nginx on the same Redis
(a push from either reaches a socket on the other)."""

import os
import shutil
import subprocess
import time
import uuid

import pytest

from mm_helpers import FakeServer, device_player, join
from rt_helpers import (RawWS, connect, notify, nginx_workers, recv_type,
                        wait_online, welcomed)


def opened(s, port=None):
    pid, auth = device_player(s)
    raw = RawWS(s, auth, port=port)
    assert raw.status == 101, raw.head
    assert raw.recv_json()["type"] == "welcome"
    return pid, auth, raw


def test_reload_closes_with_1001_and_old_workers_leave(stack):
    old = nginx_workers(stack)
    socks = [opened(stack) for _ in range(4)]
    for pid, _, _ in socks:
        wait_online(stack, pid)

    r = stack.nginx("-s", "reload")
    assert r.returncode == 0, r.stderr

    for pid, _, raw in socks[:3]:
        assert raw.close_code(timeout=15) == 1001
        raw.close()

    # the old workers are gone (the last socket never reads nor answers
    # our close: game_rt_close_timeout ends it) and new ones serve
    end = time.monotonic() + 30
    while set(old) & set(nginx_workers(stack)):
        assert time.monotonic() < end, "old workers still running"
        time.sleep(0.2)
    socks[3][2].close()

    # the client reconnects, as game.v1 tells it to after a 1001
    pid, auth = socks[0][0], socks[0][1]
    ws, w = welcomed(stack, auth)
    assert w["player_id"] == pid
    ws.close()
    stack.wait_ready()


def test_the_subscription_comes_back_after_redis_restarts(ready_stack):
    s = ready_stack
    pid, auth = device_player(s)
    ws, _ = welcomed(s, auth)
    try:
        wait_online(s, pid)
        s.run("stop", "redis")
        time.sleep(0.5)
        s.run("start", "redis")
        s.wait_ready()

        # nothing to do for the client: the worker subscribes again
        wait_online(s, pid, timeout=20)
        tag = uuid.uuid4().hex
        r = notify(s, {"player_id": pid, "body": tag})
        assert r.status_code == 202 and r.json()["online"] is True
        assert recv_type(ws, "notification")["body"] == tag

        ws.send('{"type":"ping","id":"after-redis"}')
        assert recv_type(ws, "pong")["id"] == "after-redis"
    finally:
        ws.close()


@pytest.fixture
def second_nginx(stack, tmp_path):
    """A second nginx on the same Redis and PostgreSQL, ports +10."""
    var2 = str(tmp_path / "nginx2")
    os.makedirs(var2)
    for d in ("keys", "tls"):
        shutil.copytree(os.path.join(stack.var, d), os.path.join(var2, d))
    port2 = stack.http_port + 10
    env = dict(stack.env, GAME_VAR=var2, GAME_HTTP_PORT=str(port2),
               GAME_HTTPS_PORT=str(stack.https_port + 10))
    subprocess.run([os.path.join(stack.root, "scripts", "stack"), "render"],
                   env=env, check=True, capture_output=True)
    os.makedirs(os.path.join(var2, "log"), exist_ok=True)
    conf = os.path.join(var2, "nginx", "nginx.conf")
    nginx2 = ["nginx", "-p", os.path.join(var2, "nginx"), "-c", conf,
              "-e", os.path.join(var2, "log", "nginx-error.log")]
    r = subprocess.run(nginx2, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        yield port2
    finally:
        subprocess.run(nginx2 + ["-s", "stop"], capture_output=True)
        with open(os.path.join(var2, "log", "nginx-error.log")) as f:
            bad = [l for l in f if "[alert]" in l or "[crit]" in l
                   or "[emerg]" in l or "exited on signal" in l]
        assert not bad, bad


def test_two_nginx_instances_deliver_across(stack, second_nginx):
    port2 = second_nginx
    a_id, a = device_player(stack)
    b_id, b = device_player(stack)
    # a's socket on the first nginx, b's on the second
    wa, _ = welcomed(stack, a)
    wb, _ = welcomed(stack, b, port=port2)
    server = FakeServer(stack, 41102, mode="rtnode")
    try:
        wait_online(stack, a_id)
        wait_online(stack, b_id)

        # an admin notification posted to one nginx reaches the other's
        r = notify(stack, {"player_id": b_id, "body": "across"})
        assert r.json()["online"] is True
        assert recv_type(wb, "notification")["body"] == "across"
        r = notify(stack, {"player_id": a_id, "body": "back"}, port=port2)
        assert recv_type(wa, "notification")["body"] == "back"

        # both queue through the first nginx; whichever nginx's matcher
        # makes the match, both hear of it
        assert join(stack, a, mode="rtnode").status_code == 202
        assert join(stack, b, mode="rtnode").status_code == 202
        for ws in (wa, wb):
            m = recv_type(ws, "matchmaking", timeout=20,
                          match=lambda m: m["status"] == "matched")
            assert m["server"]["port"] == 41102
    finally:
        server.stop()
        wa.close()
        wb.close()


def test_many_sockets_of_one_player_all_hear(stack):
    pid, auth = device_player(stack)
    socks = [welcomed(stack, auth)[0] for _ in range(5)]
    try:
        wait_online(stack, pid)
        r = notify(stack, {"player_id": pid, "body": "all of you"})
        assert r.status_code == 202
        for ws in socks:
            assert recv_type(ws, "notification")["body"] == "all of you"
        # the last one closing makes the player offline, not before
        for ws in socks[:-1]:
            ws.close()
        r = notify(stack, {"player_id": pid, "body": "still here"})
        assert recv_type(socks[-1], "notification")["body"] == "still here"
    finally:
        for ws in socks:
            ws.close()
    end = time.monotonic() + 10
    while notify(stack, {"player_id": pid, "body": "x"}).json()["online"]:
        assert time.monotonic() < end, "a closed player stayed online"
        time.sleep(0.1)


def test_reload_under_load(stack):
    """Sockets busy sending while nginx reloads: every one is told 1001
    (or was mid-close), none hangs, and the new workers take the
    reconnections."""
    import threading

    socks = [opened(stack) for _ in range(20)]
    stop = threading.Event()
    codes = {}

    def busy(i, raw):
        try:
            while not stop.is_set():
                raw.send_json({"type": "ping", "id": i})
                raw.recv_json(timeout=15)
                time.sleep(0.1)     # within game_rt_rate (20/s)
        except AssertionError as e:
            # recv_json raises on the close frame: "closed: code"
            codes[i] = str(e)
        except (OSError, EOFError) as e:
            codes[i] = repr(e)

    threads = [threading.Thread(target=busy, args=(i, raw))
               for i, (_, _, raw) in enumerate(socks)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    r = stack.nginx("-s", "reload")
    assert r.returncode == 0, r.stderr
    for t in threads:
        t.join(timeout=30)
    stop.set()
    assert not any(t.is_alive() for t in threads)
    assert all("1001" in c for c in codes.values()), codes
    assert len(codes) == len(socks)
    for _, _, raw in socks:
        raw.close()
    stack.wait_ready()
    for pid, auth, _ in socks[:3]:
        ws, w = welcomed(stack, auth)
        assert w["player_id"] == pid
        ws.close()


def test_worker_shutdown_timeout_ends_a_socket_stuck_sending(stack):
    """A socket whose client reads nothing, with messages waiting for it
    (under the cap), keeps an old worker for send_timeout (60 s here);
    worker_shutdown_timeout ends it sooner, and nothing logs an alert."""
    import re
    with open(stack.nginx_conf) as f:
        orig = f.read()
    short = re.sub(r"\nevents \{", "\nworker_shutdown_timeout 1s;\n\nevents {",
                   orig, count=1)
    assert short != orig
    try:
        with open(stack.nginx_conf, "w") as f:
            f.write(short)
        assert stack.nginx("-s", "reload").returncode == 0
        stack.wait_ready()
        time.sleep(1)
        old = nginx_workers(stack)

        pid, auth = device_player(stack)
        path = os.path.join(stack.var, "nginx", "small-sndbuf.sock")
        raw = RawWS(stack, auth, unix=path)
        assert raw.status == 101
        wait_online(stack, pid)
        # ~12 KB waiting: under game_rt_send_queue (16k), over the socket
        for _ in range(6):
            r = notify(stack, {"player_id": pid, "body": "w" * 1900})
            assert r.json()["online"] is True

        assert stack.nginx("-s", "reload").returncode == 0
        end = time.monotonic() + 30     # far below send_timeout (60 s)
        while set(old) & set(nginx_workers(stack)):
            assert time.monotonic() < end, "an old worker waited on"
            time.sleep(0.2)
        raw.close()
    finally:
        with open(stack.nginx_conf, "w") as f:
            f.write(orig)
        stack.nginx("-s", "reload")
        stack.wait_ready()
