"""make bench helper: the realtime rows, each beside a baseline measured by
the same client in the same run.

    bench_rt.py HTTP_PORT ADMIN_KEY_FILE NGINX_PID_FILE

  idle WebSockets held      20,000 authenticated game.v1 sockets, every
                            one answering a ping after all are open;
                            baseline: as many idle HTTP keep-alive
                            connections (nginx's own cheapest idle state)
  memory per WebSocket      the workers' proportional set size (Pss) over
                            the 20,000 sockets; baseline: the same over the
                            keep-alive connections
  fan-out p99, 10k players  one admin notification to everyone, 10,000
                            players connected, from the POST to each
                            socket's receipt; baseline: a ping written to
                            each of the 10,000 sockets at once, to its pong
                            (the same client reading the same sockets)
  messages/s                game.v1 pings answered, 200 sockets, 16 in
                            flight each; baseline: HTTP requests to
                            `return 200` over 200 keep-alive connections,
                            16 pipelined each

The client is Python (asyncio, frames by hand), split across two processes:
one process may hold 20,000 descriptors at most here, and the machine has
two cores, shared with nginx, Redis and the client.  Read the ratios; the
absolute numbers are the client's as much as nginx's.  Sockets are opened
from several loopback addresses, so that 20,000 connections to one port do
not run out of ephemeral ports.

Prints one line per row: name value unit baseline ratio target.
"""

import asyncio
import json
import multiprocessing
import os
import resource
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from bench_auth_players import device_login  # noqa: E402

HOST = "127.0.0.1"
IDLE = int(os.environ.get("BENCH_RT_IDLE", "20000"))
FANOUT = int(os.environ.get("BENCH_RT_FANOUT", "10000"))
PROCS = 2


def frame(payload):
    """A masked text frame (the mask is zero: masking is required, its
    key is not checked)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    return head + b"\0\0\0\0" + payload


async def read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    payload = await reader.readexactly(n)
    return b0 & 0x0f, payload


async def read_json(reader):
    """The next text message; pings from the server are skipped (the
    bench runs shorter than game_rt_ping_interval)."""
    while True:
        op, payload = await read_frame(reader)
        if op == 0x1:
            return json.loads(payload)
        if op == 0x8:
            raise EOFError("closed %r" % payload[:2])


async def open_ws(port, token, src):
    reader, writer = await asyncio.open_connection(
        HOST, port, local_addr=(src, 0), limit=1 << 16)
    writer.write(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Protocol: game.v1\r\n"
                  "Authorization: Bearer %s\r\n\r\n" % token).encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:64])
    m = await read_json(reader)
    assert m["type"] == "welcome", m
    return reader, writer


async def open_http(port, src):
    reader, writer = await asyncio.open_connection(
        HOST, port, local_addr=(src, 0), limit=1 << 16)
    writer.write(b"GET /bench/baseline HTTP/1.1\r\nHost: x\r\n\r\n")
    await read_http(reader)
    return reader, writer


async def read_http(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    await reader.readexactly(n)


async def opened(n, first, make):
    """n connections, made 200 at a time; source addresses 127.0.0.2+."""
    conns = []
    for i in range(0, n, 200):
        batch = [make(first + k, "127.0.0.%d" % (2 + (first + k) % 50))
                 for k in range(i, min(n, i + 200))]
        conns.extend(await asyncio.gather(*batch))
    return conns


def worker(task, conn):
    """One client process: its share of the sockets, driven by commands
    from the parent over a pipe."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(task(conn))


async def ws_task(pipe):
    port, tokens, first = pipe.recv()
    loop = asyncio.get_running_loop()
    conns = await opened(
        len(tokens), first,
        lambda i, src: open_ws(port, tokens[i - first], src))
    pipe.send(len(conns))

    while True:
        cmd = await loop.run_in_executor(None, pipe.recv)

        if cmd[0] == "ping":
            # every socket answers: (answered, latencies from the start)
            t0 = time.time()
            for r, w in conns:
                w.write(frame(b'{"type":"ping"}'))

            async def pong(r):
                m = await read_json(r)
                assert m["type"] == "pong", m
                return time.time() - t0
            lat = await asyncio.gather(*(pong(r) for r, w in conns))
            pipe.send((len(lat), lat))

        elif cmd[0] == "keep":
            for r, w in conns[cmd[1]:]:
                w.close()
            conns = conns[:cmd[1]]
            pipe.send(len(conns))

        elif cmd[0] == "listen":
            # the time each socket receives the next notification
            async def note(r):
                m = await read_json(r)
                assert m["type"] == "notification", m
                return time.time()
            tasks = [asyncio.ensure_future(note(r)) for r, w in conns]
            pipe.send("listening")
            pipe.send(await asyncio.gather(*tasks))

        elif cmd[0] == "close":
            for r, w in conns:
                w.close()
            pipe.send("closed")
            return


async def http_task(pipe):
    port, n, first = pipe.recv()
    loop = asyncio.get_running_loop()
    conns = await opened(n, first, lambda i, src: open_http(port, src))
    pipe.send(len(conns))
    cmd = await loop.run_in_executor(None, pipe.recv)
    alive = 0
    for r, w in conns:
        w.write(b"GET /bench/baseline HTTP/1.1\r\nHost: x\r\n\r\n")
    for r, w in conns:
        try:
            await read_http(r)
            alive += 1
        except Exception:
            pass
        w.close()
    pipe.send(alive)


async def throughput(port, tokens, seconds, window=16):
    """(game.v1 pings answered/s, HTTP requests answered/s), 200 sockets
    each, run one after the other in this process."""
    n = 200

    async def drive(conns, send, recv):
        done = 0
        end = time.monotonic() + seconds

        async def one(r, w):
            nonlocal done
            for _ in range(window):
                send(w)
            while time.monotonic() < end:
                await recv(r)
                done += 1
                send(w)
            for _ in range(window):
                await recv(r)

        t0 = time.monotonic()
        await asyncio.gather(*(one(r, w) for r, w in conns))
        return done / (time.monotonic() - t0)

    http = await opened(n, 0, lambda i, src: open_http(port, src))
    base = await drive(http,
                       lambda w: w.write(b"GET /bench/baseline HTTP/1.1\r\n"
                                         b"Host: x\r\n\r\n"),
                       read_http)
    for r, w in http:
        w.close()

    ws = await opened(n, 0, lambda i, src: open_ws(port, tokens[i], src))
    ping = frame(b'{"type":"ping"}')
    rate = await drive(ws, lambda w: w.write(ping), read_json)
    for r, w in ws:
        w.close()
    return rate, base


def workers_pss(pidfile):
    """The nginx workers' summed Pss, in KiB."""
    with open(pidfile) as f:
        master = int(f.read())
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != master:
                continue
            with open("/proc/%s/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


def spawn(task, args):
    parent, child = multiprocessing.Pipe()
    p = multiprocessing.Process(target=worker, args=(task, child))
    p.start()
    parent.send(args)
    return p, parent


def p99(values):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * 0.99))]


def row(name, value, unit, base, ratio, target):
    print("%s\t%s\t%s\t%s\t%s\t%s" % (name, value, unit, base, ratio,
                                      target), flush=True)


def main():
    port = int(sys.argv[1])
    with open(sys.argv[2]) as f:
        admin = f.read().strip()
    pidfile = sys.argv[3]
    base = "http://127.0.0.1:%d" % port

    # players: as many as the fan-out row needs; the idle sockets share
    # them (two sockets a player)
    tokens = [device_login(base, i)[1] for i in range(FANOUT)]

    # baseline first: idle HTTP keep-alive connections
    before = workers_pss(pidfile)
    share = IDLE // PROCS
    hs = [spawn(http_task, (port, share, k * share)) for k in range(PROCS)]
    held_http = sum(c.recv() for p, c in hs)
    time.sleep(1)
    http_kib = (workers_pss(pidfile) - before) / max(held_http, 1)
    for p, c in hs:
        c.send("go")
    alive_http = sum(c.recv() for p, c in hs)
    for p, c in hs:
        p.join()
    time.sleep(2)

    # idle WebSockets
    before = workers_pss(pidfile)
    ws = []
    for k in range(PROCS):
        mine = [tokens[(k * share + i) % len(tokens)] for i in range(share)]
        ws.append(spawn(ws_task, (port, mine, k * share)))
    held = sum(c.recv() for p, c in ws)
    time.sleep(1)
    ws_kib = (workers_pss(pidfile) - before) / max(held, 1)
    for p, c in ws:
        c.send(("ping",))
    answered = sum(c.recv()[0] for p, c in ws)

    row("idle WebSockets held", answered, "sockets", alive_http,
        "%.2f" % (answered / max(alive_http, 1)), ">= 20000")
    row("memory per WebSocket", "%.1f" % ws_kib, "KiB", "%.1f" % http_kib,
        "%.2f" % (ws_kib / http_kib if http_kib > 0 else 0), "<= 10 KiB")

    # fan-out: 10,000 players, one socket each
    per = FANOUT // PROCS
    for p, c in ws:
        c.send(("keep", per))
    kept = sum(c.recv() for p, c in ws)
    time.sleep(1)

    for p, c in ws:
        c.send(("ping",))
    base_lat = []
    for p, c in ws:
        base_lat.extend(c.recv()[1])

    for p, c in ws:
        c.send(("listen",))
    for p, c in ws:
        c.recv()
    time.sleep(0.5)
    t0 = time.time()
    req = urllib.request.Request(
        base + "/admin/notify", data=b'{"body":"bench fan-out"}',
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer " + admin})
    urllib.request.urlopen(req, timeout=30).read()
    got = []
    for p, c in ws:
        got.extend(t - t0 for t in c.recv())
    fan = p99(got) * 1000
    bl = p99(base_lat) * 1000
    row("fan-out p99, %d players" % kept, "%.1f" % fan, "ms", "%.1f" % bl,
        "%.2f" % (fan / bl if bl > 0 else 0), "all %d delivered" % len(got))

    for p, c in ws:
        c.send(("close",))
        c.recv()
        p.join()

    rate, base_rate = asyncio.run(throughput(port, tokens, 8))
    row("messages/s (ping, 200 ws)", "%.0f" % rate, "msg/s",
        "%.0f" % base_rate, "%.2f" % (rate / base_rate), "ratio vs HTTP")


if __name__ == "__main__":
    main()
