"""Players' WebSockets (ngx_game_rt_module) with the Python `websocket`
client: the handshake and its refusals, both ways of authenticating, the
game.v1 messages, and what services push (matchmaking, wallet,
notification, party) to the players they concern and to no one else."""

import json
import time
import uuid

import pytest
import requests
import websocket

from auth_helpers import bearer
from econ_helpers import admin as econ_admin, buy, send_event
from mm_helpers import (FakeServer, device_player, join, party_create,
                        party_join)
from rt_helpers import (PROTOCOL, RawWS, admin, connect, notify, recv_type,
                        token_of, wait_online, welcomed, ws_url)


def upgrade(s, headers=None, path="/ws", method="GET"):
    """A handshake by requests, to read refusals (JSON errors)."""
    h = {"Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
         "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Protocol": PROTOCOL}
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    return requests.request(method, s.url(path), headers=h, timeout=10)


def test_handshake_refusals_are_json_errors(stack):
    _, auth = device_player(stack)

    cases = [
        (dict(auth, Upgrade=None), 426, "upgrade_required"),
        (dict(auth, **{"Sec-WebSocket-Version": "8"}), 426,
         "unsupported_version"),
        (dict(auth, **{"Sec-WebSocket-Key": "short"}), 400, "invalid_key"),
        (dict(auth, **{"Sec-WebSocket-Protocol": "chat"}), 400, None),
        (dict(auth, **{"Sec-WebSocket-Protocol": None}), 400, None),
        (dict(auth, Origin="https://evil.example"), 403, None),
        ({"Authorization": "Bearer not.a.token"}, 401, None),
    ]
    for headers, code, err in cases:
        r = upgrade(stack, headers)
        assert r.status_code == code, (headers, r.status_code, r.text)
        body = r.json()["error"]
        assert body["code"] and body["message"]
        if err:
            assert body["code"] == err

    # tokens never travel in URLs, which access logs keep
    r = upgrade(stack, auth, path="/ws?access_token=" + token_of(auth))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "token_in_url"

    r = upgrade(stack, auth, method="POST")
    assert r.status_code == 405


def test_bearer_handshake_welcome_ping_and_unknown_types(stack):
    pid, auth = device_player(stack)
    ws = connect(stack, auth)
    try:
        assert ws.getsubprotocol() == PROTOCOL
        w = recv_type(ws, "welcome")
        assert w["player_id"] == pid and w["protocol"] == PROTOCOL

        ws.send(json.dumps({"type": "ping", "id": 7}))
        assert recv_type(ws, "pong")["id"] == 7

        # an unknown type, a message without one, and not JSON at all are
        # answered, and the socket stays open
        ws.send(json.dumps({"type": "teleport", "id": "t1"}))
        e = recv_type(ws, "error")
        assert e["code"] == "unknown_type" and e["id"] == "t1"
        assert e["in_reply_to"] == "teleport"
        ws.send(json.dumps({"no": "type"}))
        assert recv_type(ws, "error")["code"] == "invalid_message"
        ws.send("not json")
        assert recv_type(ws, "error")["code"] == "invalid_message"

        ws.send(json.dumps({"type": "ping", "id": "still-here"}))
        assert recv_type(ws, "pong")["id"] == "still-here"
    finally:
        ws.close()


def test_allowed_origin_is_accepted(stack):
    _, auth = device_player(stack)
    ws = connect(stack, auth, origin="http://127.0.0.1:%d" % stack.http_port)
    try:
        recv_type(ws, "welcome")
    finally:
        ws.close()


def test_first_frame_auth_for_browsers(stack):
    pid, auth = device_player(stack)
    ws = connect(stack)
    try:
        ws.send(json.dumps({"type": "auth", "token": token_of(auth)}))
        assert recv_type(ws, "welcome")["player_id"] == pid
    finally:
        ws.close()


def test_no_auth_in_time_or_a_message_before_it_closes_1008(stack):
    # nothing at all: closed when game_rt_auth_timeout runs out
    raw = RawWS(stack)
    assert raw.status == 101
    assert raw.close_code(timeout=15) == 1008
    raw.close()

    # another message first
    raw = RawWS(stack)
    raw.send_json({"type": "ping"})
    assert raw.close_code() == 1008
    raw.close()

    # a bad token
    raw = RawWS(stack)
    raw.send_json({"type": "auth", "token": "x.y.z"})
    assert raw.close_code() == 1008
    raw.close()


def test_a_fresh_token_for_another_player_is_refused(stack):
    _, a = device_player(stack)
    _, b = device_player(stack)
    ws, _ = welcomed(stack, a)
    try:
        ws.send(json.dumps({"type": "auth", "token": token_of(b)}))
        ws.settimeout(10)
        op, data = ws.recv_data(control_frame=True)
        while op != websocket.ABNF.OPCODE_CLOSE:
            op, data = ws.recv_data(control_frame=True)
        assert int.from_bytes(data[:2], "big") == 1008
    finally:
        ws.close()


def test_notifications_to_one_player_and_to_everyone(stack):
    a_id, a = device_player(stack)
    b_id, b = device_player(stack)
    wa, _ = welcomed(stack, a)
    wb, _ = welcomed(stack, b)
    try:
        wait_online(stack, a_id)
        wait_online(stack, b_id)

        r = notify(stack, {"player_id": a_id, "title": "Hi",
                           "body": "for a only", "data": {"k": 1}})
        assert r.status_code == 202, r.text
        assert r.json()["online"] is True
        m = recv_type(wa, "notification")
        assert m["body"] == "for a only" and m["title"] == "Hi"
        assert m["data"] == {"k": 1}
        assert m["notification_id"] == r.json()["notification_id"]

        tag = uuid.uuid4().hex
        r = notify(stack, {"body": tag})
        assert r.status_code == 202, r.text
        assert recv_type(wa, "notification")["body"] == tag
        # b heard the broadcast, and never a's own notification
        m = recv_type(wb, "notification")
        assert m["body"] == tag
        assert not any(x.get("body") == "for a only"
                       for x in getattr(wb, "skipped", []))
    finally:
        wa.close()
        wb.close()

    # a player who is not connected is told to be offline
    r = notify(stack, {"player_id": str(uuid.uuid4()), "body": "x"})
    assert r.status_code == 202 and r.json()["online"] is False


def test_notify_validates_and_needs_an_admin(stack):
    pid, auth = device_player(stack)
    url = stack.url("/admin/notify")
    # a player's token, or another service's admin, is no credential here
    for headers in ({}, auth, econ_admin(stack)):
        r = requests.post(url, json={"body": "x"}, headers=headers,
                          timeout=10)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
    for body in ({}, {"body": ""}, {"body": 5}, {"body": "x",
                                                  "player_id": "nope"},
                 {"body": "x" * 2001}, {"body": "x", "data": [1]}):
        r = requests.post(url, json=body, headers=admin(stack), timeout=10)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"]
    r = requests.post(url, data="{", headers=dict(
        admin(stack), **{"Content-Type": "application/json"}), timeout=10)
    assert r.status_code == 400
    r = requests.post(url, data="x", headers=dict(
        admin(stack), **{"Content-Type": "text/plain"}), timeout=10)
    assert r.status_code == 415


def test_resume_a_queued_player_hears_their_status_at_once(stack):
    pid, auth = device_player(stack)
    r = join(stack, auth, mode="duel")
    assert r.status_code == 202, r.text
    ticket = r.json()["ticket_id"]
    ws, _ = welcomed(stack, auth)
    try:
        m = recv_type(ws, "matchmaking")
        assert m["ticket_id"] == ticket and m["status"] == "queued"

        # cancelling is a status change too
        r = requests.delete(stack.url("/matchmaking/ticket"), headers=auth,
                            timeout=10)
        assert r.status_code == 200
        m = recv_type(ws, "matchmaking",
                      match=lambda m: m["status"] == "cancelled")
        assert m["ticket_id"] == ticket
    finally:
        ws.close()


def test_a_matched_player_hears_of_the_server_without_polling(stack):
    server = FakeServer(stack, 41101, mode="rtpair")
    try:
        a_id, a = device_player(stack)
        b_id, b = device_player(stack)
        wa, _ = welcomed(stack, a)
        wb, _ = welcomed(stack, b)
        wait_online(stack, a_id)
        wait_online(stack, b_id)
        try:
            assert join(stack, a, mode="rtpair").status_code == 202
            assert join(stack, b, mode="rtpair").status_code == 202
            got = []
            for ws in (wa, wb):
                m = recv_type(ws, "matchmaking", timeout=20,
                              match=lambda m: m["status"] == "matched")
                assert m["server"] == {"host": "127.0.0.1", "port": 41101}
                assert m["connection_ticket"].count(".") == 2
                got.append(m)
            assert got[0]["match_id"] == got[1]["match_id"]
            assert got[0]["ticket_id"] != got[1]["ticket_id"]
        finally:
            wa.close()
            wb.close()
    finally:
        server.stop()


def test_wallet_pushes_on_purchase_grant_and_payment(stack):
    pid, auth = device_player(stack)
    ws, _ = welcomed(stack, auth)
    try:
        wait_online(stack, pid)

        r = buy(stack, auth, "potion.health", 1, "soft")
        assert r.status_code == 201, r.text
        m = recv_type(ws, "wallet")
        assert m["reason"] == "purchase"
        assert m["balance"] == r.json()["balance"]
        assert m["transaction_id"] == r.json()["transaction_id"]

        h = dict(econ_admin(stack), **{"Idempotency-Key": uuid.uuid4().hex})
        r = requests.post(stack.url("/admin/players/%s/grant" % pid),
                          json={"soft": 5, "reason": "test"}, headers=h,
                          timeout=10)
        assert r.status_code == 201, r.text
        m = recv_type(ws, "wallet")
        assert m["reason"] == "grant" and m["balance"] == r.json()["balance"]

        ev = {"id": "evt_" + uuid.uuid4().hex, "type": "payment.succeeded",
              "data": {"payment_id": "pay_" + uuid.uuid4().hex,
                       "player_id": pid, "hard": 30}}
        r = send_event(stack, ev)
        assert r.status_code == 200 and r.json()["outcome"] == "credited"
        m = recv_type(ws, "wallet")
        assert m["reason"] == "payment" and m["balance"]["hard"] == 30
        assert m["payment_id"] == ev["data"]["payment_id"]

        # the gateway's retry changes nothing and says nothing
        assert send_event(stack, ev).json()["outcome"] == "duplicate"
        ws.send(json.dumps({"type": "ping", "id": "after"}))
        recv_type(ws, "pong")
        assert not any(x.get("type") == "wallet" for x in ws.skipped)
    finally:
        ws.close()


def test_party_members_hear_joins_leaves_and_chat(stack):
    a_id, a = device_player(stack)
    b_id, b = device_player(stack)
    c_id, c = device_player(stack)
    wa, _ = welcomed(stack, a)
    wb, _ = welcomed(stack, b)
    wc, _ = welcomed(stack, c)
    try:
        for p in (a_id, b_id, c_id):
            wait_online(stack, p)
        r = party_create(stack, a)
        assert r.status_code == 201
        party = r.json()["party_id"]
        assert party_join(stack, b, party).status_code == 200

        m = recv_type(wa, "party", match=lambda m: m["event"] == "joined")
        assert m["player_id"] == b_id and set(m["members"]) == {a_id, b_id}

        # who speaks, and to which party, is the socket's, never the
        # message's: a forged sender and party change nothing
        wb.send(json.dumps({"type": "party.chat", "text": "gl hf",
                            "from": a_id, "party_id": str(uuid.uuid4())}))
        for ws in (wa, wb):
            m = recv_type(ws, "party", match=lambda m: m["event"] == "chat")
            assert m["from"] == b_id and m["text"] == "gl hf"
            assert m["party_id"] == party

        # outside the party: refused, and nobody in it hears anything
        wc.send(json.dumps({"type": "party.chat", "text": "let me in"}))
        e = recv_type(wc, "error")
        assert e["code"] == "no_party"

        # too long a line, or none
        wa.send(json.dumps({"type": "party.chat", "text": "x" * 501}))
        assert recv_type(wa, "error")["code"] == "message_too_long"
        wa.send(json.dumps({"type": "party.chat"}))
        assert recv_type(wa, "error")["code"] == "invalid_message"

        r = requests.post(stack.url("/party/%s/leave" % party), headers=b,
                          timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["members"] == [a_id]
        m = recv_type(wa, "party", match=lambda m: m["event"] == "left")
        assert m["player_id"] == b_id and m["members"] == [a_id]
        recv_type(wb, "party", match=lambda m: m["event"] == "left")

        wa.send(json.dumps({"type": "ping", "id": 1}))
        recv_type(wa, "pong")
        assert not any(x.get("text") == "let me in"
                       for x in wa.skipped + wb.skipped)
    finally:
        for ws in (wa, wb, wc):
            ws.close()


def test_a_flood_is_refused_then_closed(stack):
    _, auth = device_player(stack)
    raw = RawWS(stack, auth)
    assert raw.status == 101
    assert raw.recv_json()["type"] == "welcome"

    # past the burst (20): the rest are refused, each answered
    for i in range(30):
        raw.send_json({"type": "ping", "id": i})
    answers = [raw.recv_json() for _ in range(30)]
    assert sum(a["type"] == "pong" for a in answers) >= 20
    assert any(a.get("code") == "rate_limited" for a in answers)

    # far past it: closed 1008, saying why (the close goes ahead of what
    # was still queued for the socket)
    for i in range(200):
        try:
            raw.send_json({"type": "ping", "id": i})
        except (BrokenPipeError, ConnectionResetError):
            break
    while True:
        fin, op, payload = raw.recv_frame()
        if op == 0x8:
            break
    assert int.from_bytes(payload[:2], "big") == 1008
    assert payload[2:] == b"rate_limited"
    raw.close()
