"""Two more independent clients of game.v1: node's `ws` and a page in
headless Chromium (driven over the DevTools protocol), besides the Python
`websocket` of the other realtime tests.  The browser authenticates the
only way a browser can, with an "auth" first message, and sends its page's
Origin, which game_rt_origins must allow."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
import websocket

from mm_helpers import device_player
from rt_helpers import notify, token_of, wait_online

HERE = os.path.dirname(__file__)


def test_node_ws_client(stack):
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "nodejs is installed by scripts/install-deps"
    pid, auth = device_player(stack)
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs")
    p = subprocess.Popen([node, os.path.join(HERE, "clients", "ws_node.js"),
                          "ws://127.0.0.1:%d/ws" % stack.http_port,
                          token_of(auth)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        line = json.loads(p.stdout.readline() or '{"error":"no output"}')
        assert line == {"ready": "unknown_type"}, (line, p.stderr.read())
        wait_online(stack, pid)
        r = notify(stack, {"player_id": pid, "body": "hello node"})
        assert r.status_code == 202 and r.json()["online"] is True
        m = json.loads(p.stdout.readline())
        assert m["notification"]["body"] == "hello node"
        assert json.loads(p.stdout.readline()) == {"closed": 1000}
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


class Chromium:
    """Headless Chromium with one page, driven by the DevTools protocol
    over a WebSocket (the Python client again, as the transport)."""

    def __init__(self, url):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        assert binary, "chromium is installed by scripts/install-deps"
        self.profile = tempfile.mkdtemp(prefix="game-test-chromium.")
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-port=0", "--remote-allow-origins=*",
             "--user-data-dir=" + self.profile, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 60
        browser = None
        while browser is None:
            line = self.proc.stderr.readline()
            assert line or self.proc.poll() is None, "chromium died"
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                browser = m.group(1)
            assert time.monotonic() < end, "chromium did not start"
        port = int(re.search(r":(\d+)/", browser).group(1))
        while True:
            pages = [t for t in requests.get(
                "http://127.0.0.1:%d/json/list" % port, timeout=5).json()
                if t["type"] == "page"]
            if pages:
                break
            assert time.monotonic() < end, "no page"
            time.sleep(0.2)
        self.cdp = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], suppress_origin=True,
            timeout=60)
        self.n = 0
        while self.evaluate("document.readyState === 'complete' && "
                            "location.href") != url:
            assert time.monotonic() < end, "the page did not load"
            time.sleep(0.1)

    def evaluate(self, expression, timeout=30):
        """The value of an expression (awaited when a promise)."""
        self.n += 1
        self.cdp.send(json.dumps({
            "id": self.n, "method": "Runtime.evaluate",
            "params": {"expression": expression, "awaitPromise": True,
                       "returnByValue": True, "timeout": timeout * 1000}}))
        while True:
            m = json.loads(self.cdp.recv())
            if m.get("id") == self.n:
                break
        assert "exceptionDetails" not in m["result"], m
        return m["result"]["result"].get("value")

    def close(self):
        try:
            self.cdp.close()
        except Exception:
            pass
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


OPEN = """
new Promise((resolve) => {
  const ws = new WebSocket('ws://127.0.0.1:%(port)d/ws', 'game.v1');
  window.rt = { ws: ws, got: [], closed: null };
  ws.onmessage = (e) => window.rt.got.push(JSON.parse(e.data));
  ws.onclose = (e) => { window.rt.closed = e.code; resolve({closed: e.code}); };
  ws.onopen = () => ws.send(JSON.stringify({type: 'auth', token: %(token)s}));
  const wait = () => {
    const w = window.rt.got.find((m) => m.type === 'welcome');
    if (w) { resolve({welcome: w, protocol: ws.protocol}); }
    else { setTimeout(wait, 20); }
  };
  wait();
})
"""

WAIT = """
new Promise((resolve) => {
  const wait = () => {
    const m = window.rt.got.find((m) => m.type === %(type)s);
    if (m) { resolve(m); } else { setTimeout(wait, 20); }
  };
  wait();
})
"""


def test_a_page_in_headless_chromium(stack):
    pid, auth = device_player(stack)
    browser = Chromium(stack.url("/test/page"))
    try:
        assert browser.evaluate("location.origin") == stack.base_url
        got = browser.evaluate(OPEN % {"port": stack.http_port,
                                       "token": json.dumps(token_of(auth))})
        assert got["protocol"] == "game.v1", got
        assert got["welcome"]["player_id"] == pid

        browser.evaluate("window.rt.ws.send(JSON.stringify("
                         "{type: 'ping', id: 'browser'})), true")
        assert browser.evaluate(WAIT % {"type": '"pong"'})["id"] == "browser"

        wait_online(stack, pid)
        tag = uuid.uuid4().hex
        r = notify(stack, {"player_id": pid, "title": "Browser", "body": tag})
        assert r.json()["online"] is True
        m = browser.evaluate(WAIT % {"type": '"notification"'})
        assert m["body"] == tag and m["title"] == "Browser"

        browser.evaluate("window.rt.ws.close(1000), true")
    finally:
        browser.close()


def test_a_page_from_another_origin_is_refused(stack):
    _, auth = device_player(stack)
    # the same server under another name: an origin game_rt_origins does
    # not list
    url = "http://localhost:%d/test/page" % stack.http_port
    browser = Chromium(url)
    try:
        assert browser.evaluate("location.origin") != stack.base_url
        got = browser.evaluate(OPEN % {"port": stack.http_port,
                                       "token": json.dumps(token_of(auth))})
        # the handshake was refused (403): the browser reports 1006
        assert got == {"closed": 1006}
    finally:
        browser.close()
