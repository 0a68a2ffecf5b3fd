"""tel_write_rows() (sql/010), the telemetry writer's load of typed rows,
against the real database: it writes what tel_write() (008) writes from
the same events, once per event id (seen before, seen twice in one load,
or written by another writer at the same moment), pseudonymised for an
erased player, in order; and game_events' format checks of 010 accept and
refuse what 001's and 008's did.

The rows are staged here as the writer stages them: COPY into the
temporary table tel_rows of the session (ngx_game_tel_writer.c)."""

import io
import json
import threading
import time
import uuid

import psycopg2
import psycopg2.errors
import pytest


STAGE = ("CREATE TEMPORARY TABLE IF NOT EXISTS tel_rows ("
         "event_id uuid NOT NULL, ts bigint NOT NULL, player_id uuid, "
         "session_id uuid, kind text NOT NULL, payload jsonb NOT NULL, "
         "source text NOT NULL, seq bigint NOT NULL) ON COMMIT DELETE ROWS")


def now_ms():
    return int(time.time() * 1000)


def connect(stack):
    conn = psycopg2.connect(stack.pg_dsn)
    with conn.cursor() as cur:
        cur.execute(STAGE)
    conn.commit()
    return conn


def copy_text(v):
    if v is None:
        return "\\N"
    return (str(v).replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def seq_of(entry_id, k):
    ms, n = (int(x) for x in entry_id.split("-"))
    return (ms << 22) | (min(n, 4095) << 10) | k


def stage(cur, entries):
    """entries: [(entry id, source, client player or None, [events])], as
    the writer reads them; one row per event, as game_tel_rows.c writes
    it."""
    buf = io.StringIO()
    for entry_id, source, player, evs in entries:
        for k, e in enumerate(evs):
            who = player if player is not None else e.get("player_id")
            buf.write("\t".join(copy_text(v) for v in (
                e["event_id"], e["ts"], who, e.get("session_id"),
                e["type"], json.dumps(e.get("payload", {})), source,
                seq_of(entry_id, k))) + "\n")
    buf.seek(0)
    cur.copy_expert("COPY tel_rows (event_id, ts, player_id, session_id, "
                    "kind, payload, source, seq) FROM STDIN", buf)


def write_rows(cur, entries, hits=None):
    # what the writer's transaction sees: its own rows only (a commit
    # empties the table; these tests load several times in one)
    cur.execute("DELETE FROM tel_rows")
    stage(cur, entries)
    cur.execute("SELECT tel_write_rows(%s::jsonb, 100)",
                (json.dumps(hits or []),))
    return cur.fetchone()[0]


def write_jsonb(cur, entries, hits=None):
    doc = []
    for entry_id, source, player, evs in entries:
        d = {"i": entry_id, "s": source, "b": {"events": evs}}
        if player is not None:
            d["p"] = player
        doc.append(d)
    cur.execute("SELECT tel_write(%s::jsonb, %s::jsonb, 100)",
                (json.dumps(doc), json.dumps(hits or [])))
    return cur.fetchone()[0]


def ev(type_="client.perf", payload=None, **kw):
    e = {"event_id": str(uuid.uuid4()), "type": type_, "ts": now_ms() - 7,
         "payload": {"fps": 60.5, "ping_ms": 20} if payload is None
         else payload}
    e.update(kw)
    return e


def new_player(cur):
    cur.execute("INSERT INTO players (username) VALUES (%s) RETURNING id::text",
                ("tr_" + uuid.uuid4().hex[:20],))
    return cur.fetchone()[0]


def rows_of(cur, ids):
    cur.execute("SELECT event_id::text, occurred_at, player_id::text, "
                "session_id::text, kind, payload, source, seq "
                "FROM game_events WHERE event_id = ANY(%s::uuid[]) "
                "ORDER BY id", (ids,))
    return cur.fetchall()


@pytest.fixture
def db(stack):
    """A connection with its tel_rows; everything is rolled back."""
    conn = connect(stack)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def test_rows_write_what_tel_write_writes_from_the_same_events(db):
    with db.cursor() as cur:
        player, erased = new_player(cur), new_player(cur)
        cur.execute("UPDATE players SET deleted_at = now() WHERE id = %s",
                    (erased,))
        sid = str(uuid.uuid4())

        t = now_ms()
        a = [
            ("%d-0" % t, "client", player,
             [ev(), ev("ui.action", {"screen": "a\tb", "action": "\\N",
                                     "value": "\u00e9\n\\."},
                       session_id=sid)]),
            ("%d-5000" % t, "server:eu-1", None,
             [ev("kill", {"match_id": "m", "victim": "v"}, player_id=player),
              ev("match.start", {"match_id": "m"}),
              ev("kill", {"match_id": "m", "victim": "w"},
                 player_id=erased)]),
            ("%d-1" % (t + 1), "client", erased, [ev()]),
        ]
        # the same events, but for their ids
        b = [(i, s_, p, [dict(e, event_id=str(uuid.uuid4())) for e in evs])
             for i, s_, p, evs in a]

        assert write_jsonb(cur, a) == 6
        assert write_rows(cur, b) == 6

        ids_a = [e["event_id"] for _, _, _, evs in a for e in evs]
        ids_b = [e["event_id"] for _, _, _, evs in b for e in evs]
        got_a, got_b = rows_of(cur, ids_a), rows_of(cur, ids_b)
        assert [r[1:] for r in got_a if r[2] in (player, None)] == \
            [r[1:] for r in got_b if r[2] in (player, None)]
        assert [r[0] for r in got_b] == ids_b      # written in seq order

        # the erased player's events: under an alias, one per load
        aliased = [r for r in got_b if r[2] not in (player, None)]
        assert len(aliased) == 2 and erased not in {r[2] for r in aliased}
        assert len({r[2] for r in aliased}) == 1
        assert len({r[2] for r in got_a if r[2] not in (player, None)}) == 1


def test_ids_seen_before_or_twice_are_written_once(db):
    with db.cursor() as cur:
        player = new_player(cur)
        t = now_ms()
        first = [ev() for _ in range(3)]
        assert write_rows(cur, [("%d-0" % t, "client", player, first)]) == 3

        # one written above (this generation), one of the previous
        # generation, one twice in this load, one new
        cur.execute("SELECT gen FROM tel_seen_gen")
        gen = cur.fetchone()[0]
        old = ev()
        cur.execute("INSERT INTO tel_seen (gen, event_id) VALUES (%s, %s)",
                    (gen - 1, old["event_id"]))
        twice, new = ev(), ev()
        again = dict(twice, payload={"fps": 1, "ping_ms": 1})
        n = write_rows(cur, [("%d-1" % t, "client", player,
                              [first[1], old, twice, new]),
                             ("%d-2" % t, "client", player, [again])])
        assert n == 2

        ids = [e["event_id"] for e in first + [old, twice, new]]
        cur.execute("SELECT event_id::text, count(*) FROM game_events "
                    "WHERE event_id = ANY(%s::uuid[]) GROUP BY 1", (ids,))
        counts = dict(cur.fetchall())
        assert counts == {i: 1 for i in ids if i != old["event_id"]}
        # of two copies in one load, the first in seq order
        cur.execute("SELECT payload FROM game_events WHERE event_id = %s",
                    (twice["event_id"],))
        assert cur.fetchone()[0] == twice["payload"]

        # a load of nothing but repeats writes nothing
        assert write_rows(cur, [("%d-3" % t, "client", player, first)]) == 0


def test_a_load_racing_another_with_the_same_ids_writes_each_once(stack):
    """Two writers load overlapping events at once: the second waits for
    the first's ids in the unique index, finds them written when it
    commits, and loads its batch again the careful way (the savepoint of
    tel_write_rows), writing only what is new."""
    a, b = connect(stack), connect(stack)
    try:
        with a.cursor() as ca:
            player = new_player(ca)
        a.commit()
        shared = [ev() for _ in range(5)]
        only_b = [ev() for _ in range(3)]
        t = now_ms()
        with a.cursor() as ca:
            assert write_rows(ca, [("%d-0" % t, "client", player,
                                    shared)]) == 5
        got = {}

        def second():
            with b.cursor() as cb:
                got["n"] = write_rows(cb, [("%d-1" % t, "client", player,
                                            only_b + shared)])
            b.commit()

        th = threading.Thread(target=second)
        th.start()
        # b waits for a's uncommitted ids
        end = time.monotonic() + 10
        while True:
            with a.cursor() as ca:
                ca.execute("SELECT count(*) FROM pg_locks WHERE pid = %s "
                           "AND NOT granted", (b.get_backend_pid(),))
                if ca.fetchone()[0]:
                    break
            assert time.monotonic() < end, "the second load never waited"
            time.sleep(0.05)
        a.commit()
        th.join(10)
        assert not th.is_alive()
        assert got["n"] == 3

        with a.cursor() as ca:
            ids = [e["event_id"] for e in shared + only_b]
            ca.execute("SELECT event_id::text, count(*) FROM game_events "
                       "WHERE event_id = ANY(%s::uuid[]) GROUP BY 1", (ids,))
            assert dict(ca.fetchall()) == {i: 1 for i in ids}
        a.commit()
    finally:
        a.close()
        b.close()


def test_rows_postgresql_refuses_fail_the_load(db):
    """What tel_write() refuses, the typed load refuses too: the writer
    then writes the read entry by entry and dead-letters the culprit."""
    with db.cursor() as cur:
        player = new_player(cur)
        cases = [
            "not-a-uuid\t1\t\\N\t\\N\tclient.perf\t{}\tclient\t1\n",
            "%s\t1\t\\N\t\\N\tNot A Kind\t{}\tclient\t1\n" % uuid.uuid4(),
            "%s\t1\t\\N\t\\N\tx\t{\"a\":\"\\\\u0000\"}\tclient\t1\n"
            % uuid.uuid4(),
            "%s\t\\N\t\\N\t\\N\tx\t{}\tclient\t1\n" % uuid.uuid4(),
            "%s\t1\t%s\t\\N\tx\t{}\tnobody\t1\n" % (uuid.uuid4(), player),
        ]
        for row in cases:
            cur.execute("SAVEPOINT s")
            with pytest.raises(psycopg2.Error):
                cur.copy_expert("COPY tel_rows (event_id, ts, player_id, "
                                "session_id, kind, payload, source, seq) "
                                "FROM STDIN", io.StringIO(row))
                cur.execute("SELECT tel_write_rows('[]', 100)")
            cur.execute("ROLLBACK TO SAVEPOINT s")


@pytest.mark.parametrize("kind, ok", [
    ("a", True), ("client.perf", True), ("a" * 64, True),
    ("z0_.:-9", True), ("a" * 65, False), ("", False), ("A", False),
    ("1a", False), ("a b", False), ("a\u00e9", False), ("-a", False),
    ("a\n", False),
])
def test_the_kind_check_is_001s(db, kind, ok):
    check(db, kind, "client", ok)


@pytest.mark.parametrize("source, ok", [
    ("client", True), ("server:x", True), ("server:" + "a" * 128, True),
    ("server:A-z_0.9:x", True), (None, True), ("server:", False),
    ("server:" + "a" * 129, False), ("Client", False), ("client ", False),
    ("server:a b", False), ("server:\u00e9", False), ("server", False),
    ("clientserver:x", False), ("server:x\n", False),
])
def test_the_source_check_is_008s(db, source, ok):
    check(db, "k", source, ok)


def check(db, kind, source, ok):
    with db.cursor() as cur:
        cur.execute("SAVEPOINT s")
        q = ("INSERT INTO game_events (kind, source) VALUES (%s, %s)")
        if ok:
            cur.execute(q, (kind, source))
        else:
            with pytest.raises(psycopg2.errors.CheckViolation):
                cur.execute(q, (kind, source))
        cur.execute("ROLLBACK TO SAVEPOINT s")
        # the expressions of 001 and 008 agree
        cur.execute("SELECT %s ~ '^[a-z][a-z0-9_.:-]{0,63}$' "
                    "AND coalesce(%s ~ '^(client|server:[A-Za-z0-9_.:-]"
                    "{1,128})$', true)", (kind, source))
        assert cur.fetchone()[0] is ok
