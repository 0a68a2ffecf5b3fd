"""Helpers for the realtime tests: WebSocket clients against the real stack.

Two kinds of client: the Python `websocket` library (Debian
python3-websocket), a well-behaved client, and RawWS, a socket that writes
frames byte by byte, for what a well-behaved library never sends (unmasked
frames, bad opcodes, broken UTF-8, fragments out of order)."""

import base64
import json
import os
import socket
import struct
import time

import requests
import websocket

from econ_helpers import secret

PROTOCOL = "game.v1"


def ws_url(s, path="/ws"):
    return "ws://127.0.0.1:%d%s" % (s.http_port, path)


def token_of(auth):
    return auth["Authorization"].split(" ", 1)[1]


def connect(s, auth=None, origin=None, subprotocols=(PROTOCOL,), port=None,
            timeout=10):
    """A websocket-client connection; with "auth" the token goes in the
    Authorization header (a native client), else the caller sends an
    "auth" message (a browser)."""
    header = []
    if auth is not None:
        header.append("Authorization: " + auth["Authorization"])
    url = ("ws://127.0.0.1:%d/ws" % port) if port else ws_url(s)
    return websocket.create_connection(
        url, header=header, origin=origin, timeout=timeout,
        subprotocols=list(subprotocols) if subprotocols else None,
        suppress_origin=origin is None)


def recv_json(ws, timeout=10):
    ws.settimeout(timeout)
    return json.loads(ws.recv())


def recv_type(ws, want, timeout=10, match=None):
    """Read messages until one of type "want" (and "match", a predicate)
    comes; the messages skipped are kept on ws.skipped."""
    end = time.monotonic() + timeout
    skipped = getattr(ws, "skipped", [])
    ws.skipped = skipped
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("no %r message; got %r" % (want, skipped))
        m = recv_json(ws, left)
        if m.get("type") == want and (match is None or match(m)):
            return m
        skipped.append(m)


def welcomed(s, auth, **kw):
    """A connection authenticated by its header, past its welcome."""
    ws = connect(s, auth, **kw)
    m = recv_type(ws, "welcome")
    return ws, m


def notify(s, body, port=None):
    base = ("http://127.0.0.1:%d" % port) if port else s.base_url
    return requests.post(base + "/admin/notify", json=body, headers=admin(s),
                         timeout=10)


def admin(s):
    """The realtime admin's credential (game_rt_admin)."""
    return {"Authorization": "Bearer " + secret(s, "rt-admin.key")}


def wait_online(s, player, timeout=10):
    """Until the player's channel is subscribed (the core's presence): a
    push sent before that is missed, by design."""
    end = time.monotonic() + timeout
    import redis
    rds = redis.Redis(port=s.redis_port)
    try:
        while True:
            n = rds.pubsub_numsub("game:push:" + player)[0][1]
            if n > 0:
                return
            if time.monotonic() > end:
                raise AssertionError("player %s never online" % player)
            time.sleep(0.05)
    finally:
        rds.close()


def nginx_workers(s):
    """The pids of nginx's workers, from ps."""
    import subprocess
    master = s.pid("nginx")
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)],
                         capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


class RawWS:
    """A WebSocket spoken by hand over a socket."""

    def __init__(self, s, auth=None, unix=None, port=None, extra=()):
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(unix)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(("127.0.0.1", port or s.http_port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /ws HTTP/1.1", "Host: 127.0.0.1",
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13",
                 "Sec-WebSocket-Protocol: " + PROTOCOL]
        if auth is not None:
            lines.append("Authorization: " + auth["Authorization"])
        lines.extend(extra)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode("latin-1")

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            body = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            self.sock.sendall(head + key + body)
        else:
            self.sock.sendall(head + payload)

    def send_text(self, text, **kw):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text,
                        **kw)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_frame(self, timeout=10):
        """(fin, opcode, payload) of the next frame; EOFError when the
        server closed the TCP connection."""
        self.sock.settimeout(timeout)
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "a server frame must not be masked"
        n = b1 & 0x7f
        off = 2
        if n == 126:
            self._need(4)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0f, payload

    def recv_json(self, timeout=10):
        while True:
            fin, op, payload = self.recv_frame(timeout)
            if op == 0x1:
                return json.loads(payload)
            if op == 0x8:
                raise AssertionError("closed: %r" % (close_code(payload),))

    def close_code(self, timeout=10):
        """Read until the server's close frame; its code (None: none).
        Text and pings on the way are skipped."""
        while True:
            try:
                fin, op, payload = self.recv_frame(timeout)
            except (EOFError, ConnectionResetError):
                return None
            if op == 0x8:
                return close_code(payload)

    def closed(self, timeout=10):
        """True once the server has closed the TCP connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def close_code(payload):
    if len(payload) < 2:
        return None
    return struct.unpack("!H", payload[:2])[0]
