"""Telemetry (ngx_modules/telemetry): POST /game/telemetry, the writer into
game_events, deduplication, limits, back-pressure, game servers' events,
erasure and the admin endpoints, against the real stack.

conf/test.conf gives telemetry small limits so that the tests reach them:
a backlog of 50 batches, 200 events/s per player (burst 1000).

Every test runs twice, once for each way the writer loads (the module's
"mode"): "copy", test.conf's, typed rows by COPY on the tel_copy pool, and
"jsonb", test.conf without game_tel_writer_copy_pg, one statement with
the entries as a jsonb parameter."""

import json
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from auth_helpers import bearer, psql
from mm_helpers import device_player, error_code
from tel_helpers import (admin, copies, counter, event, events, now_ms,
                         rds, send, server_batch, server_event, stats,
                         wait_until, wait_written, writer_held,
                         writer_mode, writers_waiting)


@pytest.fixture(scope="module", params=["copy", "jsonb"], autouse=True)
def mode(request, stack):
    with writer_mode(stack, request.param):
        yield request.param


# --------------------------------------------------------------------------
# Ingest: what is accepted, what is refused and why
# --------------------------------------------------------------------------

def test_a_batch_is_accepted_written_once_in_order_for_the_tokens_player(
        stack):
    pid, auth = device_player(stack)
    evs = events(5)
    evs[2]["session_id"] = str(uuid.uuid4())
    r = send(stack, auth, evs)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 5, "rejected": []}

    wait_written(stack, [e["event_id"] for e in evs])
    rows = psql(stack, "SELECT event_id::text, player_id::text, kind, "
                       "payload, source, session_id::text, seq "
                       "FROM game_events WHERE player_id = %s ORDER BY seq",
                pid)
    # in the order they came, the token's player, as sent
    assert [r_[0] for r_ in rows] == [e["event_id"] for e in evs]
    assert {r_[1] for r_ in rows} == {pid}
    assert all(r_[2] == "client.perf" and r_[3] == {"fps": 60, "ping_ms": 20}
               and r_[4] == "client" for r_ in rows)
    assert rows[2][5] == evs[2]["session_id"]

    # a later batch comes after it
    later = events(2)
    assert send(stack, auth, later).status_code == 202
    wait_written(stack, [e["event_id"] for e in later])
    seqs = psql(stack, "SELECT seq FROM game_events WHERE player_id = %s "
                       "ORDER BY occurred_at, seq", pid)
    assert [s_[0] for s_ in seqs] == sorted(s_[0] for s_ in seqs)
    assert len(seqs) == 7


def test_the_player_is_the_tokens_never_the_bodys(stack):
    pid, auth = device_player(stack)
    other, _ = device_player(stack)
    e = event()
    e["player_id"] = other
    r = send(stack, auth, [e, event()])
    assert r.status_code == 202
    assert r.json()["rejected"] == [{"index": 0, "code": "invalid_event"}]

    # a body naming another player is still the sender's batch
    ok = event()
    r = requests.post(stack.url("/game/telemetry"), headers=auth, timeout=10,
                      json={"player_id": other, "events": [ok]})
    assert r.status_code == 202
    wait_written(stack, [ok["event_id"]])
    assert psql(stack, "SELECT player_id::text FROM game_events "
                       "WHERE event_id = %s", ok["event_id"]) == [(pid,)]
    assert psql(stack, "SELECT count(*) FROM game_events WHERE player_id = %s",
                other) == [(0,)]


def test_rejected_events_are_named_by_index_and_code(stack):
    _, auth = device_player(stack)
    good = event()
    dup = dict(good)
    batch = [
        good,                                                   # 0 ok
        event(event_id="not-a-uuid"),                           # 1
        event("no.such.type"),                                  # 2
        event("position", payload={"x": 1}),                    # 3 server's
        event(ts="yesterday"),                                  # 4
        event(ts=now_ms() - 2 * 86400 * 1000),                  # 5 too old
        event(ts=now_ms() + 3600 * 1000),                       # 6 ahead
        event(session_id="s-1"),                                # 7
        event("session.start", payload={}),                     # 8 required
        event("session.start", payload={"platform": "x" * 33}),  # 9 length
        event("client.perf", payload={"fps": "sixty"}),         # 10 type
        event("client.perf", payload={"colour": "red"}),        # 11 unknown
        event("ui.action", payload={"screen": "s", "action": "a",
                                    "value": "v" * 256}),       # 12 ok
        event("match.client", payload={"event": "e", "detail": {
            "blob": "z" * 3000}}),                              # 13 large
        dup,                                                    # 14 again
        ["not", "an", "object"],                                # 15
        event(payload=[1, 2]),                                  # 16
    ]
    r = send(stack, auth, batch)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {"index": 1, "code": "invalid_event_id"},
        {"index": 2, "code": "unknown_type"},
        {"index": 3, "code": "unknown_type"},
        {"index": 4, "code": "invalid_ts"},
        {"index": 5, "code": "ts_out_of_range"},
        {"index": 6, "code": "ts_out_of_range"},
        {"index": 7, "code": "invalid_session_id"},
        {"index": 8, "code": "invalid_payload"},
        {"index": 9, "code": "invalid_payload"},
        {"index": 10, "code": "invalid_payload"},
        {"index": 11, "code": "invalid_payload"},
        {"index": 13, "code": "payload_too_large"},
        {"index": 14, "code": "duplicate_event_id"},
        {"index": 15, "code": "invalid_event"},
        {"index": 16, "code": "invalid_payload"},
    ]
    # only the valid ones are written: what went on the stream was the
    # valid subset, not the body as it came
    wait_written(stack, [good["event_id"], batch[12]["event_id"]])
    assert copies(stack, [e["event_id"] for e in batch
                          if isinstance(e, dict)]) == \
        {good["event_id"]: 1, batch[12]["event_id"]: 1}


def test_a_batch_of_only_invalid_events_is_answered_and_counted(stack):
    _, auth = device_player(stack)
    before = counter(stack, "rejected")
    r = send(stack, auth, [event("no.such"), event("no.such")])
    assert r.status_code == 202
    assert r.json() == {"accepted": 0, "rejected": [
        {"index": 0, "code": "unknown_type"},
        {"index": 1, "code": "unknown_type"}]}
    wait_until(lambda: counter(stack, "rejected") >= before + 2,
               what="rejected events counted")


def test_malformed_batches_are_refused_whole(stack):
    pid, auth = device_player(stack)
    url = stack.url("/game/telemetry")

    def post(data, ctype="application/json", headers=None):
        h = dict(auth)
        h["Content-Type"] = ctype
        h.update(headers or {})
        return requests.post(url, data=data, headers=h, timeout=10)

    cases = [
        (post(b'{"events":[]}', "text/plain"), 415, "unsupported_media_type"),
        (post(b'{"events":[{"event_id"'), 400, "invalid_json"),
        (post(b'[1,2]'), 400, "invalid_json"),
        (post(b'{"events":[]}'), 422, "invalid_batch"),
        (post(b'{"events":{"a":1}}'), 422, "invalid_batch"),
        (post(b'{"batch":[]}'), 422, "invalid_batch"),
        # more events than game_tel_max_events (500)
        (post(json.dumps({"events": events(501)}).encode()), 413,
         "too_many_events"),
        # more bytes than game_tel_max_bytes (256k): refused unread
        (post(b'{"events":[' + b' ' * (256 * 1024) + b']}'), 413,
         "payload_too_large"),
    ]
    for r, status, code in cases:
        assert r.status_code == status, (status, code, r.text)
        assert error_code(r) == code

    # 500 events at once are fine
    r = send(stack, auth, events(500))
    assert r.status_code == 202 and r.json()["accepted"] == 500

    # no token, someone else's method
    assert requests.post(url, json={"events": events(1)},
                         timeout=10).status_code == 401
    r = requests.get(url, headers=auth, timeout=10)
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"
    assert psql(stack, "SELECT count(*) FROM game_events "
                       "WHERE player_id = %s AND kind <> 'client.perf'",
                pid) == [(0,)]


def test_a_large_valid_batch_over_chunked_http_is_taken_as_a_whole(stack):
    _, auth = device_player(stack)
    evs = events(400, type_="ui.action",
                 payload={"screen": "lobby", "action": "click",
                          "value": "v" * 200})
    data = json.dumps({"events": evs}).encode()
    assert len(data) > 100 * 1024

    def chunks():
        for i in range(0, len(data), 7000):
            yield data[i:i + 7000]

    h = dict(auth)
    h["Content-Type"] = "application/json"
    r = requests.post(stack.url("/game/telemetry"), data=chunks(), headers=h,
                      timeout=20)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 400
    wait_written(stack, [e["event_id"] for e in evs])


# --------------------------------------------------------------------------
# Deduplication, end to end
# --------------------------------------------------------------------------

def test_a_retried_batch_is_written_once(stack):
    _, auth = device_player(stack)
    evs = events(20)
    for _ in range(3):
        r = send(stack, auth, evs)
        assert r.status_code == 202 and r.json()["accepted"] == 20
    # and the same events, shuffled into another batch with new ones
    more = events(5)
    assert send(stack, auth, evs[::-1] + more).status_code == 202
    wait_written(stack, [e["event_id"] for e in evs + more])
    time.sleep(1.5)     # a later pass would have shown a second copy
    assert set(copies(stack, [e["event_id"] for e in evs]).values()) == {1}


def test_retries_that_reach_the_writer_together_are_written_once(stack):
    """Both copies of a batch wait on the stream and come in one read."""
    _, auth = device_player(stack)
    evs = events(10)
    with writer_held(stack):
        assert send(stack, auth, evs).status_code == 202
        assert send(stack, auth, evs).status_code == 202
    wait_written(stack, [e["event_id"] for e in evs])


# --------------------------------------------------------------------------
# Rate limit and back-pressure
# --------------------------------------------------------------------------

def test_a_player_over_the_rate_gets_429_with_retry_after(stack):
    _, auth = device_player(stack)
    _, other = device_player(stack)
    before = counter(stack, "refused_rate")

    # the burst is 1000 events: two full batches, then the bucket is dry
    assert send(stack, auth, events(500)).status_code == 202
    assert send(stack, auth, events(500)).status_code == 202
    r = send(stack, auth, events(500))
    assert r.status_code == 429, r.text
    assert error_code(r) == "rate_limited"
    # 500 events at 200/s: the batch fits again in about 2.5 s
    assert 1 <= int(r.headers["Retry-After"]) <= 3
    # nothing of a refused batch is queued; another player is not limited
    assert send(stack, other, events(10)).status_code == 202
    assert counter(stack, "refused_rate") >= before + 500

    time.sleep(int(r.headers["Retry-After"]))
    assert send(stack, auth, events(500)).status_code == 202


def test_a_full_backlog_answers_503_and_nothing_accepted_is_lost(stack):
    """The writer is held back (as if PostgreSQL were slow); batches pile
    up on the stream to its limit (50 in test.conf), then ingest refuses
    with 503 + Retry-After.  Once the writer runs again, every accepted
    event is written, once."""
    _, auth = device_player(stack)
    accepted = []
    before = counter(stack, "refused_backlog")
    with writer_held(stack):
        for i in range(80):
            batch = events(3)
            r = send(stack, auth, batch)
            if r.status_code == 503:
                break
            assert r.status_code == 202, r.text
            accepted += [e["event_id"] for e in batch]
        else:
            raise AssertionError("the backlog never filled")
        assert error_code(r) == "backlog_full"
        assert r.headers["Retry-After"] == "1"
        assert stats(stack)["backlog"]["events"] >= 50
        assert counter(stack, "refused_backlog") >= before + 3
    assert len(accepted) >= 3 * 40
    wait_written(stack, accepted, timeout=90)
    wait_until(lambda: stats(stack)["backlog"]["events"] == 0,
               what="an empty backlog")
    # the writer keeps up again: ingest accepts
    assert send(stack, auth, events(3)).status_code == 202


# --------------------------------------------------------------------------
# The writer's failures: every accepted event is in game_events once
# --------------------------------------------------------------------------

def test_workers_killed_in_the_middle_of_a_batch(stack):
    """Statements of the writer are in flight (waiting on a lock) when both
    workers are killed: their transactions die with them, the entries stay
    pending for consumers that no longer exist, and the new workers take
    them over (claim_idle) and write them, once."""
    _, auth = device_player(stack)
    ids = []
    with writer_held(stack):
        for _ in range(10):
            batch = events(20)
            assert send(stack, auth, batch).status_code == 202
            ids += [e["event_id"] for e in batch]
        wait_until(lambda: writers_waiting(stack) > 0,
                   what="a writer statement in flight")
        workers = [int(p) for p in os.popen(
            "ps -o pid= --ppid %d" % stack.pid("nginx")).read().split()]
        for w in workers:
            stack.killed_workers.append(w)
            os.kill(w, signal.SIGKILL)
    wait_written(stack, ids, timeout=90)
    stack.wait_ready()


def test_acknowledgements_lost_after_the_commit_write_nothing_twice(stack):
    """Redis freezes while the writer's statements commit: the events are
    in PostgreSQL but their entries are not acknowledged, so they come
    back; the second load finds their ids and writes nothing.

    The statement must still be waiting when the lock goes: one that gave
    up first (its lock_timeout) cannot commit while Redis is frozen, so
    the round is tried again until a commit happened under the freeze."""
    _, auth = device_player(stack)
    ids, committed_frozen = [], False
    for _ in range(5):
        batch_ids = []
        with writer_held(stack):
            for _ in range(5):
                batch = events(10)
                assert send(stack, auth, batch).status_code == 202
                batch_ids += [e["event_id"] for e in batch]
            wait_until(lambda: writers_waiting(stack) > 0,
                       what="a writer statement in flight")
            redis_pid = stack.pid("redis")
            os.kill(redis_pid, signal.SIGSTOP)
        try:
            # the held statement commits now; its acknowledgements cannot go
            end = time.monotonic() + 3
            while time.monotonic() < end and not copies(stack, batch_ids):
                time.sleep(0.05)
            committed_frozen = bool(copies(stack, batch_ids))
            time.sleep(1.0)
        finally:
            os.kill(redis_pid, signal.SIGCONT)
        ids += batch_ids
        wait_written(stack, ids, timeout=90)
        if committed_frozen:
            break
    assert committed_frozen, "no statement committed while Redis was frozen"
    wait_until(lambda: stats(stack)["backlog"]["events"] == 0,
               what="an empty backlog")
    assert set(copies(stack, ids).values()) == {1}
    stack.wait_ready()


def test_postgres_down_in_the_middle_of_a_flood(ready_stack):
    s = ready_stack
    _, auth = device_player(s)
    ids, stop = [], threading.Event()

    def flood():
        while not stop.is_set():
            batch = events(10)
            try:
                r = send(s, auth, batch, timeout=5)
            except requests.RequestException:
                continue
            if r.status_code == 202:
                ids.extend(e["event_id"] for e in batch)
            time.sleep(0.02)

    t = threading.Thread(target=flood)
    t.start()
    try:
        time.sleep(1.0)
        s.run("stop", "postgres")
        time.sleep(1.5)
        s.run("start", "postgres")
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
    assert len(ids) > 100
    wait_written(s, ids, timeout=120)


def test_backends_killed_under_retried_batches_lose_and_double_nothing(stack):
    """Four clients send batches, each one twice (a retry after a lost
    answer), while a killer terminates nginx's PostgreSQL backends again
    and again: at the end every accepted event is in game_events once.
    The writer falls behind while its statements die, so ingest pushes
    back (503); the clients do what a client should and come back after
    Retry-After."""
    stop = threading.Event()
    accepted = []
    lock = threading.Lock()

    players = [device_player(stack)[1] for _ in range(4)]

    def client(auth):
        for _ in range(25):
            batch = events(8)
            ok = False
            for _ in range(2):
                for _ in range(20):
                    try:
                        r = send(stack, auth, batch, timeout=5)
                    except requests.RequestException:
                        break
                    if r.status_code != 503:
                        ok = ok or r.status_code == 202
                        break
                    time.sleep(int(r.headers.get("Retry-After", "1")))
            if ok:
                with lock:
                    accepted.extend(e["event_id"] for e in batch)

    def killer():
        while not stop.is_set():
            psql(stack, "SELECT count(pg_terminate_backend(pid)) "
                        "FROM pg_stat_activity "
                        "WHERE application_name LIKE 'nginx-game%%'")
            time.sleep(0.3)

    k = threading.Thread(target=killer)
    k.start()
    clients = [threading.Thread(target=client, args=(a,)) for a in players]
    try:
        for c in clients:
            c.start()
        for c in clients:
            c.join()
    finally:
        stop.set()
        k.join()
    assert len(accepted) > 400
    wait_written(stack, accepted, timeout=120)
    wait_until(lambda: stats(stack)["backlog"]["events"] == 0, timeout=90,
               what="an empty backlog")


def test_a_poison_entry_goes_to_the_dead_letters_alone(stack, mode):
    """An entry the database refuses (here: an event_id that is no UUID,
    put on the stream by someone other than ingest) is tried alone and
    dead-lettered; so is one that is no batch at all, and one that is not
    JSON (refused by PostgreSQL's jsonb, or by the writer itself when it
    parses entries into rows); the good entries of the same read are
    written."""
    pid, auth = device_player(stack)
    r = rds(stack)
    good = events(5)
    with writer_held(stack):
        assert send(stack, auth, good[:2]).status_code == 202
        not_json = r.xadd("tel:events", {"s": "client", "p": pid, "n": "1",
                                         "b": '{"events":[{"event_id":"x"'})
        bad_id = r.xadd("tel:events", {"s": "client", "p": pid, "n": "1",
                                       "b": '{"events":[{"event_id":"'
                                            '0d6f1f2e-8a3c-4b5d-9e7f-'
                                            '00112233445","type":'
                                            '"client.perf","ts":1}]}'})
        garbage = r.xadd("tel:events", {"garbage": "1"})
        assert send(stack, auth, good[2:]).status_code == 202
    wait_written(stack, [e["event_id"] for e in good])
    assert dead_letters(stack, "tel:events", [not_json, bad_id, garbage]) == {
        not_json: ("not a telemetry batch" if mode == "copy"
                   else "refused by the database"),
        bad_id: "refused by the database",
        garbage: "not a telemetry batch"}
    wait_until(lambda: stats(stack)["backlog"]["events"] == 0,
               what="an empty backlog")


def dead_letters(stack, stream, ids):
    """source entry id -> the reason it was dead-lettered, once all are."""
    def found():
        got = {f["source_id"]: f["reason"] for _, f in
               rds(stack).xrevrange(stream + ":dead", count=500)
               if f.get("source_id") in ids}
        return got if len(got) == len(ids) else None
    return wait_until(found, what="the dead letters of %s" % ids)


# Strings COPY's text format gives a meaning to, and some it does not
HOSTILE = {
    "tab": "a\tb", "newline": "a\nb", "cr": "a\rb", "crlf": "\r\n",
    "backslash": "a\\b", "null": "\\N", "end": "\\.",
    "all": "\t\\N\n\\.\r\n\\\\", "escaped": "\\t\\n\\u0041",
    "quotes": "\"'`", "utf8": "\u00e9\u2603\u2028\u2029\U0001f600",
    "control": "\u0001\u001f\u007f", "tab\tkey\\": "v",
}


def test_hostile_bytes_in_payloads_are_written_as_sent(stack, mode):
    """Tabs, newlines, carriage returns, backslashes, \\N and \\. in
    strings and keys, escaped and raw UTF-8: game_events holds exactly
    what the player and the server sent."""
    pid, auth = device_player(stack)
    detail = dict(HOSTILE, nested={"list": list(HOSTILE.values())})
    evs = [event("match.client", payload={"match_id": "m\t1",
                                          "event": "\\N",
                                          "detail": detail}),
           event("ui.action", payload={"screen": "\\", "action": "\n",
                                       "value": "\\.\n"}),
           event("client.perf", payload={"fps": 59.94, "frame_ms": 16.7,
                                         "ping_ms": 2 ** 40})]
    assert send(stack, auth, evs).json()["accepted"] == 3
    # the same as raw UTF-8, not \u escapes
    raw = [event("match.client", payload={"match_id": "m",
                                          "event": HOSTILE["utf8"],
                                          "detail": detail})]
    h = dict(auth)
    h["Content-Type"] = "application/json"
    r = requests.post(stack.url("/game/telemetry"), headers=h, timeout=10,
                      data=json.dumps({"events": raw},
                                      ensure_ascii=False).encode())
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    srv = [server_event("match.end", pid,
                        {"match_id": HOSTILE["all"], "mode": "dm",
                         "reason": HOSTILE["escaped"],
                         "winner": HOSTILE["utf8"]})]
    server_batch(stack, "hostile-" + uuid.uuid4().hex[:6], srv)

    sent = {e["event_id"]: e["payload"] for e in evs + raw + srv}
    wait_written(stack, list(sent))
    got = dict(psql(stack, "SELECT event_id::text, payload FROM game_events "
                           "WHERE event_id = ANY(%s::uuid[])", list(sent)))
    assert got == sent


def test_numbers_are_written_as_they_were_sent(stack, mode):
    """16.7 stays 16.7 (not 16.699999999999999, the 17 digits jansson
    writes a double with) on every path a number takes: a client batch
    kept as it came, one rebuilt without its rejected events, and a game
    server's batch, which the writer reads and checks."""
    pid, auth = device_player(stack)
    numbers = {"fps": 59.94, "frame_ms": 16.7, "loss": 0.1}
    kept = [event("client.perf", payload=dict(numbers))]
    assert send(stack, auth, kept).json()["accepted"] == 1
    rebuilt = [event("client.perf", payload=dict(numbers)),
               event("client.perf", payload={"fps": -1})]
    r = send(stack, auth, rebuilt).json()
    assert r["accepted"] == 1 and r["rejected"][0]["index"] == 1, r
    srv = [server_event("position", pid, {"x": 16.7, "y": 0.1, "speed": 2.5,
                                          "match_id": "m-num", "mode": "dm"})]
    server_batch(stack, "num-" + uuid.uuid4().hex[:6], srv)

    ids = [kept[0]["event_id"], rebuilt[0]["event_id"], srv[0]["event_id"]]
    wait_written(stack, ids)
    got = dict(psql(stack, "SELECT event_id::text, payload::text "
                           "FROM game_events WHERE event_id = "
                           "ANY(%s::uuid[])", ids))
    for i in ids[:2]:
        assert json.loads(got[i], parse_float=str) == \
            {k: str(v) for k, v in numbers.items()}, got[i]
    assert json.loads(got[ids[2]], parse_float=str)["x"] == "16.7", got
    assert json.loads(got[ids[2]], parse_float=str)["y"] == "0.1", got


def test_an_escaped_nul_never_blocks_the_stream(stack, mode):
    """jsonb refuses \\u0000 in text.  Ingest refuses it (400, jansson
    does too); an entry that holds one anyway (put on a stream by someone
    else) goes to the dead letters alone, and the entries around it are
    written."""
    pid, auth = device_player(stack)
    r = rds(stack)
    nul = ('{"events":[{"event_id":"%s","type":"ui.action","ts":%d,'
           '"payload":{"screen":"a\\u0000b","action":"x"}}]}'
           % (uuid.uuid4(), now_ms()))
    h = dict(auth)
    h["Content-Type"] = "application/json"
    resp = requests.post(stack.url("/game/telemetry"), data=nul, headers=h,
                         timeout=10)
    assert resp.status_code == 400 and error_code(resp) == "invalid_json"

    good = events(4)
    sid = "nul-" + uuid.uuid4().hex[:6]
    good_srv = [server_event("kill", pid, {"match_id": "m", "victim": "v"})]
    with writer_held(stack):
        assert send(stack, auth, good[:2]).status_code == 202
        bad = r.xadd("tel:events", {"s": "client", "p": pid, "n": "1",
                                    "b": nul})
        bad_srv = r.xadd("tel:server", {"s": "server:" + sid, "n": "1",
                                        "b": nul.replace(
                                            '"ts"', '"player_id":"%s","ts"'
                                            % pid)})
        assert send(stack, auth, good[2:]).status_code == 202
        server_batch(stack, sid, good_srv)
    wait_written(stack, [e["event_id"] for e in good + good_srv])
    # the writer's own parse refuses it (copy), or PostgreSQL's (jsonb)
    assert dead_letters(stack, "tel:events", [bad])[bad] == (
        "not a telemetry batch" if mode == "copy"
        else "refused by the database")
    assert dead_letters(stack, "tel:server", [bad_srv])[bad_srv] == \
        "not a telemetry batch"
    assert copies(stack, [json.loads(nul.replace("\\u0000", ""))
                          ["events"][0]["event_id"]]) == {}
    wait_until(lambda: stats(stack)["backlog"]["events"] == 0,
               what="an empty backlog")


# --------------------------------------------------------------------------
# Game servers
# --------------------------------------------------------------------------

def test_game_servers_events_are_checked_and_written_for_their_players(
        stack):
    pid, _ = device_player(stack)
    sid = "teltest-" + uuid.uuid4().hex[:6]
    before = counter(stack, "server_rejected")
    ok = [server_event("kill", pid, {"match_id": "m1", "victim": "p2",
                                     "distance": 12.5}),
          server_event("match.start", None, {"match_id": "m1",
                                             "mode": "dm", "players": 2})]
    bad = [server_event("kill", "not-a-uuid", {"match_id": "m1",
                                               "victim": "x"}),
           server_event("client.perf", pid, {"fps": 1}),
           server_event("kill", pid, {"victim": "no match"})]
    server_batch(stack, sid, ok + bad)
    wait_written(stack, [e["event_id"] for e in ok])
    rows = psql(stack, "SELECT kind, player_id::text, source FROM game_events "
                       "WHERE event_id = ANY(%s::uuid[]) ORDER BY seq",
                [e["event_id"] for e in ok])
    assert rows == [("kill", pid, "server:" + sid),
                    ("match.start", None, "server:" + sid)]
    assert copies(stack, [e["event_id"] for e in bad]) == {}
    wait_until(lambda: counter(stack, "server_rejected") >= before + 3,
               what="the dropped events counted")


def test_a_server_entry_that_is_not_a_batch_is_dead_lettered(stack):
    r = rds(stack)
    before = r.xlen("tel:server:dead")
    r.xadd("tel:server", {"s": "server:bad id!", "n": "1", "b": "{}"})
    r.xadd("tel:server", {"s": "server:x", "n": "1", "b": "not json"})
    wait_until(lambda: r.xlen("tel:server:dead") >= before + 2,
               what="two dead letters")


# --------------------------------------------------------------------------
# Anti-cheat signals from what servers report
# --------------------------------------------------------------------------

def test_rules_flag_a_player_for_review_with_the_evidence(stack):
    cheat, _ = device_player(stack)
    honest, _ = device_player(stack)
    sid = "telrules-" + uuid.uuid4().hex[:6]
    fast = [server_event("position", cheat,
                         {"match_id": "m", "mode": "dm", "x": 50, "y": 50,
                          "speed": 50})
            for _ in range(3)]
    fine = [server_event("position", honest,
                         {"match_id": "m", "mode": "dm", "x": 50, "y": 50,
                          "speed": 10, "claim_x": 50.2, "claim_y": 49.9}),
            server_event("combat", honest,
                         {"match_id": "m", "weapon": "rifle", "shots": 4,
                          "window_ms": 1000, "match_shots": 30,
                          "match_hits": 9})]
    server_batch(stack, sid, fast + fine)
    wait_written(stack, [e["event_id"] for e in fast + fine])

    rows = psql(stack, "SELECT score, flagged_at IS NOT NULL FROM "
                       "tel_suspicion WHERE player_id = %s", cheat)
    assert rows == [(30, False)]
    assert psql(stack, "SELECT count(*) FROM tel_suspicion "
                       "WHERE player_id = %s", honest) == [(0,)]
    assert psql(stack, "SELECT tel_player_flagged(%s)", cheat) == [(False,)]

    # the same entry again (a redelivery) adds nothing
    server_batch(stack, sid, fast)
    more = [server_event("combat", cheat,
                         {"match_id": "m", "weapon": "rifle", "shots": 30,
                          "window_ms": 1000, "match_shots": 40,
                          "match_hits": 39}),
            server_event("anticheat.flag", cheat,
                         {"match_id": "m", "check": "speed", "count": 2}),
            server_event("position", cheat,
                         {"match_id": "m", "mode": "dm", "x": 1, "y": 99,
                          "speed": 10, "claim_x": -50, "claim_y": 150})]
    server_batch(stack, sid, more)
    wait_written(stack, [e["event_id"] for e in more])

    # 30 + fire_rate 10 + hit_ratio 20 + server_flag 2 x 5 + teleport 10
    assert psql(stack, "SELECT score, flagged_at IS NOT NULL FROM "
                       "tel_suspicion WHERE player_id = %s", cheat) == \
        [(80, True)]
    assert psql(stack, "SELECT tel_player_flagged(%s)", cheat) == [(True,)]
    rules = psql(stack, "SELECT rule, count(*) FROM tel_evidence "
                        "WHERE player_id = %s GROUP BY rule ORDER BY rule",
                 cheat)
    assert rules == [("fire_rate", 1), ("hit_ratio", 1), ("server_flag", 1),
                     ("speed", 3), ("teleport", 1)]
    # every piece of evidence is an event in game_events
    assert psql(stack, "SELECT count(*) FROM tel_evidence v "
                       "WHERE v.player_id = %s AND NOT EXISTS ("
                       "SELECT 1 FROM game_events g "
                       "WHERE g.event_id = v.event_id "
                       "AND g.occurred_at = v.occurred_at)", cheat) == [(0,)]

    # the admin sees the player, with the evidence
    r = requests.get(stack.url("/admin/telemetry/flagged?limit=500"),
                     headers=admin(stack), timeout=10)
    assert r.status_code == 200, r.text
    flagged = {p["player_id"]: p for p in r.json()["players"]}
    assert cheat in flagged and honest not in flagged
    assert flagged[cheat]["score"] == 80
    assert {e["rule"] for e in flagged[cheat]["evidence"]} == \
        {"speed", "teleport", "fire_rate", "hit_ratio", "server_flag"}

    # a review: confirmed stays flagged, cleared does not
    url = stack.url("/admin/telemetry/players/%s/review" % cheat)
    r = requests.post(url, headers=admin(stack), timeout=10,
                      json={"decision": "confirm", "note": "obvious"})
    assert r.status_code == 200, r.text
    assert r.json()["review"] == "confirmed" and r.json()["flagged"] is True
    assert r.json()["reviewed_by"] == "ops"
    r = requests.post(url, headers=admin(stack), timeout=10,
                      json={"decision": "clear"})
    assert r.json()["flagged"] is False and r.json()["score"] == 0
    assert psql(stack, "SELECT tel_player_flagged(%s)", cheat) == [(False,)]
    r = requests.post(url, headers=admin(stack), timeout=10,
                      json={"decision": "clear"})
    assert r.status_code == 404 and error_code(r) == "not_flagged"
    r = requests.post(stack.url("/admin/telemetry/players/%s/review"
                                % honest), headers=admin(stack), timeout=10,
                      json={"decision": "ban"})
    assert r.status_code == 422 and error_code(r) == "invalid_review"


def test_flagged_players_come_in_pages(stack):
    sid = "telpages-" + uuid.uuid4().hex[:6]
    players = [device_player(stack)[0] for _ in range(3)]
    for p in players:
        evs = [server_event("anticheat.flag", p,
                            {"match_id": "m", "check": "fire_rate",
                             "count": 3}) for _ in range(4)]
        server_batch(stack, sid, evs)
        wait_written(stack, [e["event_id"] for e in evs])

    seen, cursor = [], None
    for _ in range(1000):
        url = "/admin/telemetry/flagged?limit=2&evidence=1"
        if cursor:
            url += "&cursor=" + cursor
        r = requests.get(stack.url(url), headers=admin(stack), timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["players"]) <= 2
        # (players flagged by other tests may have no evidence)
        assert all(len(p["evidence"]) == 1 for p in page["players"]
                   if p["player_id"] in players)
        seen += [p["player_id"] for p in page["players"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert set(players) <= set(seen)
    assert len(seen) == len(set(seen))

    r = requests.get(stack.url("/admin/telemetry/flagged?cursor=nope"),
                     headers=admin(stack), timeout=10)
    assert r.status_code == 422 and error_code(r) == "invalid_cursor"
    r = requests.get(stack.url("/admin/telemetry/flagged?limit=0"),
                     headers=admin(stack), timeout=10)
    assert r.status_code == 422 and error_code(r) == "invalid_page"


def test_the_admin_endpoints_want_an_admin(stack):
    _, auth = device_player(stack)
    for method, path in [("GET", "/admin/telemetry/flagged"),
                         ("GET", "/admin/telemetry/stats"),
                         ("POST", "/admin/telemetry/players/%s/review"
                          % uuid.uuid4())]:
        for headers in ({}, auth, {"Authorization": "Bearer " + "x" * 40}):
            r = requests.request(method, stack.url(path), headers=headers,
                                 json={"decision": "clear"}, timeout=10)
            assert r.status_code == 401, (path, headers, r.text)
            assert error_code(r) == "unauthorized"
    r = requests.post(stack.url("/admin/telemetry/stats"),
                      headers=admin(stack), timeout=10)
    assert r.status_code == 405


def test_the_outcome_says_who_is_under_review(stack):
    """The matchmaker's outcome carries each player's review flag beside
    the game server's own, for rewards and leaderboards to use."""
    cheat, _ = device_player(stack)
    other, _ = device_player(stack)
    match = str(uuid.uuid4())
    psql(stack, "INSERT INTO game_sessions (id, mode, region) "
                "VALUES (%s, 'duel', 'local')", match)
    for p in (cheat, other):
        psql(stack, "INSERT INTO game_session_players (session_id, "
                    "player_id, team) VALUES (%s, %s, 0)", match, p)
    psql(stack, "INSERT INTO tel_suspicion (player_id, score, flagged_at) "
                "VALUES (%s, 500, now())", cheat)
    outcome = psql(stack, "SELECT mm_match_outcome(%s, 'applied')", match)
    players = {p["player_id"]: p for p in outcome[0][0]["players"]}
    assert players[cheat]["under_review"] is True
    assert players[other]["under_review"] is False
    assert players[cheat]["flagged"] is False     # the server's, unchanged


# --------------------------------------------------------------------------
# Erasure
# --------------------------------------------------------------------------

def test_an_erased_players_events_stay_pseudonymised_also_late_ones(stack):
    pid, auth = device_player(stack)
    sid = "telerase-" + uuid.uuid4().hex[:6]
    early = events(3)
    assert send(stack, auth, early).status_code == 202
    wait_written(stack, [e["event_id"] for e in early])
    server_batch(stack, sid, [server_event("anticheat.flag", pid, {
        "match_id": "m", "check": "speed", "count": 3})])
    wait_until(lambda: psql(stack, "SELECT count(*) FROM tel_evidence "
                                   "WHERE player_id = %s", pid)[0][0] == 1,
               what="evidence")

    with writer_held(stack):
        # accepted before the erasure, written after it
        late = events(4)
        assert send(stack, auth, late).status_code == 202
        r = requests.delete(stack.url("/player/me"), headers=auth, timeout=10)
        assert r.status_code in (200, 204), r.text
        # a game server still reports the player
        from_server = [server_event("kill", pid, {"match_id": "m",
                                                  "victim": "v"})]
        server_batch(stack, sid, from_server)
    # the token died with the account (every worker knows within a second:
    # revocations travel on a stream, ngx_game_auth_revoke.c)
    wait_until(lambda: send(stack, auth, events(1)).status_code == 401,
               timeout=10, what="the erased player's token refused")

    ids = [e["event_id"] for e in early + late + from_server]
    wait_written(stack, ids)
    assert psql(stack, "SELECT count(*) FROM game_events WHERE player_id = %s",
                pid) == [(0,)]
    rows = psql(stack, "SELECT player_id::text FROM game_events "
                       "WHERE event_id = ANY(%s::uuid[])", ids)
    assert len(rows) == len(ids) and all(r_[0] != pid for r_ in rows)
    # nothing links the events back either
    assert psql(stack, "SELECT count(*) FROM tel_evidence WHERE player_id = %s",
                pid) == [(0,)]
    assert psql(stack, "SELECT count(*) FROM tel_suspicion "
                       "WHERE player_id = %s", pid) == [(0,)]


# --------------------------------------------------------------------------
# Counters
# --------------------------------------------------------------------------

def test_the_counters_add_up(stack):
    _, auth = device_player(stack)
    before = stats(stack)["counters"]
    evs = events(6)
    assert send(stack, auth, evs + [event("no.such")]).status_code == 202
    assert send(stack, auth, evs).status_code == 202
    wait_written(stack, [e["event_id"] for e in evs])

    def moved():
        c = stats(stack)["counters"]
        return (c.get("accepted", 0) - before.get("accepted", 0) >= 12
                and c.get("written", 0) - before.get("written", 0) >= 6
                and c.get("duplicates", 0) - before.get("duplicates", 0) >= 6
                and c.get("rejected", 0) - before.get("rejected", 0) >= 1)
    wait_until(moved, what="counters")
    body = stats(stack)
    assert set(body) == {"counters", "backlog", "dead_letters"}


# --------------------------------------------------------------------------
# Partitions (last: it looks at what every test above wrote)
# --------------------------------------------------------------------------

def test_partitions_are_kept_ahead_old_ones_expire_and_none_is_default(
        stack):
    """test.conf: daily partitions 3 days ahead, 40 days of retention, the
    job every second.  A day partition 70 days old is dropped by the job;
    every day from yesterday to 3 days ahead is covered; and nothing any
    test wrote sits in the default partition."""
    old = psql(stack, "SELECT to_char(now() AT TIME ZONE 'UTC' "
                      "- interval '70 days', '\"game_events_y\"YYYY\"m\"MM"
                      "\"d\"DD')")[0][0]
    psql(stack, "SELECT tel_partition_create(date_trunc('day', "
                "(now() AT TIME ZONE 'UTC') - interval '70 days'), 'day')")
    assert psql(stack, "SELECT count(*) FROM tel_partitions() "
                       "WHERE name = %s", old) == [(1,)]
    wait_until(lambda: psql(stack, "SELECT count(*) FROM tel_partitions() "
                                   "WHERE name = %s", old) == [(0,)],
               timeout=30, what="the old partition dropped")
    report = psql(stack, "SELECT report FROM tel_maintenance")[0][0]
    assert report["outcome"] == "done"

    for d in range(-1, 4):
        assert psql(stack, "SELECT tel_partition_covers("
                           "date_trunc('day', (now() AT TIME ZONE 'UTC') "
                           "+ %s * interval '1 day'), "
                           "date_trunc('day', (now() AT TIME ZONE 'UTC') "
                           "+ (%s + 1) * interval '1 day'))", d, d) \
            == [(True,)], d

    # days beyond what exists are made as days, and only once (the days
    # an earlier run of this test made go first)
    for d in range(400, 403):
        name = psql(stack, "SELECT to_char(now() AT TIME ZONE 'UTC' "
                           "+ %s * interval '1 day', '\"game_events_y\"YYYY"
                           "\"m\"MM\"d\"DD')", d)[0][0]
        psql(stack, "DROP TABLE IF EXISTS %s" % name)
    ensure = ("SELECT tel_partitions_ensure('day', d + interval '400 days', "
              "d + interval '403 days') FROM (SELECT date_trunc('day', "
              "now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS d) t")
    assert psql(stack, ensure) == [(3,)]
    assert psql(stack, ensure) == [(0,)]

    # events at the edges of what ingest takes: nearly a day old, and
    # minutes ahead
    _, auth = device_player(stack)
    edge = [event(ts=now_ms() - 23 * 3600 * 1000),
            event(ts=now_ms() + 4 * 60 * 1000), event()]
    assert send(stack, auth, edge).json()["accepted"] == 3
    wait_written(stack, [e["event_id"] for e in edge])
    assert psql(stack, "SELECT count(*) FROM game_events")[0][0] >= 3
    assert psql(stack, "SELECT count(*) FROM game_events_default") == [(0,)]


def test_redis_flushall_and_telemetry_goes_on(stack):
    """Someone empties Redis: the streams, the writer's group, the rate
    buckets, the counters and the job's lease are gone.  What the writer
    had already written stays written once; the bus makes its group again
    (NOGROUP), and new batches from players and servers are written.
    (Accepted events still waiting on the stream are lost with it: Redis'
    own persistence is what keeps them, see the README.)"""
    pid, auth = device_player(stack)
    before = events(5)
    assert send(stack, auth, before).status_code == 202
    wait_written(stack, [e["event_id"] for e in before])

    rds(stack).flushall()

    after = events(5)
    wait_until(lambda: send(stack, auth, after).status_code == 202,
               timeout=20, what="ingest after FLUSHALL")
    from_server = [server_event("kill", pid, {"match_id": "m",
                                              "victim": "v"})]
    server_batch(stack, "flush-" + uuid.uuid4().hex[:6], from_server)
    # a replay of the first batch: tel_seen, not Redis, remembers it
    assert send(stack, auth, before).status_code == 202
    wait_written(stack, [e["event_id"] for e in after + from_server + before],
                 timeout=60)
    wait_until(lambda: stats(stack)["backlog"]["events"] == 0,
               what="an empty backlog")
    assert set(copies(stack, [e["event_id"] for e in before]).values()) \
        == {1}


def test_the_writer_loads_the_way_it_is_told(stack, mode):
    """test.conf gives the writer a copy=on pool: its events reach
    game_events through the typed staging table tel_rows, exactly once;
    without the pool (jsonb) nothing goes through it."""
    def staged():
        return psql(stack, "SELECT coalesce(sum(n_tup_ins), 0) "
                           "FROM pg_stat_user_tables WHERE "
                           "relname = 'tel_rows'")[0][0]

    _, auth = device_player(stack)
    before = staged()
    evs = events(20)
    assert send(stack, auth, evs).status_code == 202
    ids = [e["event_id"] for e in evs]
    wait_written(stack, ids)
    assert copies(stack, ids) == {i: 1 for i in ids}
    if mode == "copy":
        wait_until(lambda: staged() >= before + 20,
                   what="rows copied into tel_rows")
    else:
        time.sleep(1.0)     # the statistics lag a little
        assert staged() == before
