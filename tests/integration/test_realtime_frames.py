"""RFC 6455 at the frame level, spoken by hand (RawWS): what a hostile or
broken client sends gets the close code the RFC asks for, and the worker
that read it lives on.  Also the timers (pings and their deadline) and
the outbound cap (a client that does not read is closed, never allowed
to grow the worker's memory)."""

import json
import os
import struct

import pytest

from mm_helpers import device_player
from rt_helpers import RawWS, nginx_workers, notify, wait_online

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def opened(s):
    pid, auth = device_player(s)
    raw = RawWS(s, auth)
    assert raw.status == 101, raw.head
    assert "Sec-WebSocket-Protocol: game.v1" in raw.head
    assert raw.recv_json()["type"] == "welcome"
    return pid, raw


def still_serving(s, workers):
    """The same workers, and a fresh socket works."""
    assert nginx_workers(s) == workers
    _, raw = opened(s)
    raw.send_json({"type": "ping", "id": "alive"})
    assert raw.recv_json()["id"] == "alive"
    raw.close()


CASES = [
    # (name, frames, expected close code)
    ("unmasked", [dict(op=TEXT, payload=b'{"type":"ping"}', mask=False)],
     1002),
    ("invalid utf-8", [dict(op=TEXT, payload=b'{"type":"\xff\xfe"}')], 1007),
    ("utf-8 split badly across fragments",
     [dict(op=TEXT, payload=b'{"type":"\xe2\x82', fin=False),
      dict(op=CONT, payload=b'\x28"}')], 1007),
    ("continuation without a start", [dict(op=CONT, payload=b"x")], 1002),
    ("a new message inside a fragmented one",
     [dict(op=TEXT, payload=b'{"ty', fin=False),
      dict(op=TEXT, payload=b'pe":"ping"}')], 1002),
    ("reserved bits", [dict(op=TEXT, payload=b"{}", rsv=4)], 1002),
    ("reserved opcode", [dict(op=0x3, payload=b"")], 1002),
    ("fragmented control frame", [dict(op=PING, payload=b"x", fin=False)],
     1002),
    ("control frame too long", [dict(op=PING, payload=b"x" * 126)], 1002),
    ("close code out of range", [dict(op=CLOSE,
                                      payload=struct.pack("!H", 999))], 1002),
    ("close code 1005 on the wire", [dict(op=CLOSE,
                                          payload=struct.pack("!H", 1005))],
     1002),
    ("close reason not utf-8",
     [dict(op=CLOSE, payload=struct.pack("!H", 1000) + b"\xff")], 1007),
    ("close with one byte", [dict(op=CLOSE, payload=b"\x03")], 1002),
    ("a message over game_rt_max_message",
     [dict(op=TEXT, payload=b"x" * 5000)], 1009),
    ("fragments over game_rt_max_message together",
     [dict(op=TEXT, payload=b"x" * 3000, fin=False),
      dict(op=CONT, payload=b"x" * 3000)], 1009),
]


@pytest.mark.parametrize("name,frames,code", CASES,
                         ids=[c[0] for c in CASES])
def test_bad_frames_get_the_right_close_code(stack, name, frames, code):
    workers = nginx_workers(stack)
    _, raw = opened(stack)
    try:
        for f in frames:
            raw.send_frame(f["op"], f["payload"], fin=f.get("fin", True),
                           mask=f.get("mask", True), rsv=f.get("rsv", 0))
        assert raw.close_code() == code
        assert raw.closed()
    finally:
        raw.close()
    still_serving(stack, workers)


def test_a_binary_message_is_refused_with_1003(stack):
    _, raw = opened(stack)
    raw.send_frame(BINARY, b"\x00\x01")
    assert raw.close_code() == 1003
    raw.close()


def test_fragments_with_control_frames_between_make_one_message(stack):
    _, raw = opened(stack)
    try:
        msg = json.dumps({"type": "ping", "id": "frag"}).encode()
        raw.send_frame(TEXT, msg[:5], fin=False)
        raw.send_frame(PING, b"between")
        raw.send_frame(CONT, msg[5:12], fin=False)
        raw.send_frame(PONG, b"unsolicited")
        raw.send_frame(CONT, msg[12:])
        got_pong = False
        while True:
            fin, op, payload = raw.recv_frame()
            if op == PONG:
                assert payload == b"between"
                got_pong = True
            elif op == TEXT:
                m = json.loads(payload)
                if m.get("type") == "pong":
                    assert m["id"] == "frag"
                    break
        assert got_pong
    finally:
        raw.close()


def test_a_clean_close_is_echoed(stack):
    _, raw = opened(stack)
    raw.send_frame(CLOSE, struct.pack("!H", 1000) + b"bye")
    assert raw.close_code() == 1000
    assert raw.closed()
    raw.close()


def test_a_client_that_never_answers_pings_is_closed(stack):
    # RawWS answers nothing by itself: a ping comes after
    # game_rt_ping_interval, then, past game_rt_pong_timeout, the socket
    # is dropped (a peer that answers nothing would not read a close)
    _, raw = opened(stack)
    try:
        saw_ping = False
        while True:
            try:
                fin, op, payload = raw.recv_frame(timeout=30)
            except EOFError:
                break
            if op == PING:
                saw_ping = True
            assert op != CLOSE or saw_ping
        assert saw_ping
    finally:
        raw.close()


def test_a_client_that_answers_pings_stays(stack):
    _, raw = opened(stack)
    try:
        pings = 0
        while pings < 2:
            fin, op, payload = raw.recv_frame(timeout=30)
            assert op != CLOSE, payload
            if op == PING:
                pings += 1
                raw.send_frame(PONG, payload)
        raw.send_json({"type": "ping", "id": "later"})
        assert raw.recv_json()["id"] == "later"
    finally:
        raw.close()


def test_a_client_that_does_not_read_is_closed_not_buffered(stack):
    """The outbound cap: pushes pile up for a reader that stopped; past
    game_rt_send_queue (16k here) the socket is closed with 1013 and the
    player is offline, so the worker's memory did not follow.  The socket
    is nginx's listener with a 4k send buffer, so that the kernel does not
    hide the queue behind megabytes of its own."""
    workers = nginx_workers(stack)
    pid, auth = device_player(stack)
    path = os.path.join(stack.var, "nginx", "small-sndbuf.sock")
    raw = RawWS(stack, auth, unix=path)
    assert raw.status == 101
    wait_online(stack, pid)
    body = "n" * 1900
    cut = False
    for i in range(100):
        r = notify(stack, {"player_id": pid, "body": body})
        assert r.status_code == 202
        if not r.json()["online"]:
            cut = True
            break
    assert cut, "the worker kept a socket that never read 190 KB"
    # what we read now ends with the close
    assert raw.close_code(timeout=10) == 1013
    raw.close()
    still_serving(stack, workers)


def test_a_ping_flood_that_reads_nothing_is_closed(stack):
    """wslay answers pings by itself; a client that sends them and never
    reads the pongs is a slow consumer like any other (1013), and the
    queue of pongs does not grow without end."""
    workers = nginx_workers(stack)
    _, auth = device_player(stack)
    path = os.path.join(stack.var, "nginx", "small-sndbuf.sock")
    raw = RawWS(stack, auth, unix=path)
    assert raw.status == 101
    payload = b"p" * 125
    sent = 0
    try:
        for sent in range(20000):           # 2.6 MB of pings
            raw.send_frame(PING, payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    code = None
    while True:
        try:
            fin, op, data = raw.recv_frame(timeout=30)
        except (EOFError, ConnectionResetError):
            break
        if op == CLOSE:
            code = struct.unpack("!H", data[:2])[0]
            break
    assert code == 1013
    raw.close()
    still_serving(stack, workers)
