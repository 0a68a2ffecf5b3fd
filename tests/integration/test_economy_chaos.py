"""10,000 concurrent purchases by 100 players while PostgreSQL backends are
killed: the economy's invariants hold.

Each purchase is a client that retries with the same Idempotency-Key until
it gets an answer that is not "retry later" (503, 504, 409 in use), as a
well-behaved game client does; some clients also send their key twice at
once, and some reuse a key for another request.  Most players run out of
money half way, so many answers are 402.  Meanwhile a thread terminates
nginx's PostgreSQL backends every fraction of a second.  Afterwards:

  - every client got its answer, or only ever a retryable error;
  - no key was answered two ways (a 201 replays as that 201, a 402 as
    that 402, another request under the key is 422);
  - no purchase was applied twice: each answered key has at most one
    ledger row, and every player's items are what the ledger says;
  - no balance is negative, and balances are the sum of the ledger.
"""

import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import requests

from auth_helpers import psql
from econ_helpers import ledger_holds
from mm_helpers import device_player

PURCHASES = 10000
PLAYERS = 100
RETRYABLE = (503, 504, 409)
FINAL = (201, 402, 422)


def killer(stack, stop, killed):
    conn = psycopg2.connect(host="127.0.0.1", port=stack.pg_port,
                            dbname="game", user="postgres")
    conn.autocommit = True
    cur = conn.cursor()
    while not stop.is_set():
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = 'game' AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend' "
                    "ORDER BY random() LIMIT 1")
        killed[0] += sum(1 for (ok,) in cur.fetchall() if ok)
        time.sleep(0.15)
    conn.close()


def test_purchases_under_backend_kills_keep_every_invariant(stack):
    players = [device_player(stack) for _ in range(PLAYERS)]
    rng = random.Random(7)
    # (player index, key, quantity): some keys are sent twice at once
    plan = []
    for i in range(PURCHASES):
        p = rng.randrange(PLAYERS)
        plan.append((p, "k%d" % i, rng.randint(1, 3)))
    doubles = rng.sample(range(PURCHASES), PURCHASES // 10)
    reused = set(rng.sample(range(PURCHASES), PURCHASES // 50))

    answers = {}            # (player, key, quantity) -> [(status, body)]
    lock = threading.Lock()
    failures = []
    local = threading.local()

    def client(job):
        p, key, qty = job
        pid, auth = players[p]
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        headers = dict(auth, **{"Idempotency-Key": key})
        body = {"item_id": "potion.health", "quantity": qty,
                "currency": "soft"}
        for _ in range(200):
            try:
                r = s.post(stack.url("/store/purchase"), json=body,
                           headers=headers, timeout=30)
            except requests.RequestException as e:
                with lock:
                    failures.append((key, "transport", repr(e)))
                return
            with lock:
                answers.setdefault((p, key, qty), []).append(
                    (r.status_code, r.content))
            if r.status_code in FINAL:
                return
            if r.status_code not in RETRYABLE:
                with lock:
                    failures.append((key, r.status_code, r.text))
                return
            if r.status_code in (503, 504):
                assert "Retry-After" in r.headers or r.status_code == 504
            time.sleep(0.02)
        with lock:
            failures.append((key, "no answer", None))

    # a double goes right after its original: two workers send them at
    # the same moment, and one of them finds the key in use
    order = list(range(PURCHASES))
    rng.shuffle(order)
    doubles, reused = set(doubles), set(reused)
    jobs = []
    for i in order:
        jobs.append(plan[i])
        if i in doubles:
            jobs.append(plan[i])
        if i in reused:
            jobs.append((plan[i][0], plan[i][1], plan[i][2] % 3 + 1))

    stop = threading.Event()
    killed = [0]
    k = threading.Thread(target=killer, args=(stack, stop, killed))
    k.start()
    try:
        with ThreadPoolExecutor(max_workers=48) as ex:
            list(ex.map(client, jobs))
    finally:
        stop.set()
        k.join()

    if os.environ.get("GAME_CHAOS_SUMMARY"):
        from collections import Counter
        print("\nkilled", killed[0], "answers", Counter(
            a[0] for got in answers.values() for a in got))
    assert killed[0] > 10, "the chaos did not happen"
    assert not failures, failures[:5]

    # no key answered two ways: per (player, key), the final answers of one
    # request are one answer; another request under it is 422 or that same
    by_key = {}
    for (p, key, qty), got in answers.items():
        final = [a for a in got if a[0] in FINAL]
        assert final, (p, key, qty, got[-3:])
        assert len(set(final)) == 1, (p, key, qty, set(final))
        by_key.setdefault((p, key), []).append(final[0])
    for (p, key), finals in by_key.items():
        statuses = sorted(a[0] for a in finals)
        if len(finals) > 1:
            # two requests under one key: one was taken, the other refused
            assert statuses.count(422) >= len(finals) - 1, (p, key, finals)

    statuses = [a[0][0] for a in by_key.values()]
    assert statuses.count(201) > 1000 and statuses.count(402) > 1000

    # nothing applied twice: one ledger row per answered key at most, and
    # every player's potions are the sum of their ledger's potions
    dup = psql(stack, "SELECT player_id, idempotency_key, count(*) FROM "
                      "transactions WHERE kind = 'purchase' GROUP BY 1, 2 "
                      "HAVING count(*) > 1")
    assert dup == []
    ids = [pid for pid, _ in players]
    rows = psql(stack, """
        SELECT p.id::text,
               coalesce((SELECT sum(quantity) FROM inventory_items i
                          WHERE i.player_id = p.id
                            AND i.template_id = 'potion.health'), 0),
               coalesce((SELECT sum(item_quantity_delta) FROM transactions t
                          WHERE t.player_id = p.id
                            AND t.item_template_id = 'potion.health'), 0),
               p.soft_currency
          FROM players p WHERE p.id::text = ANY(%s)""", ids)
    assert len(rows) == PLAYERS
    for pid, owned, ledger, soft in rows:
        assert owned == ledger, (pid, owned, ledger)
        assert soft >= 0
        assert soft == 1000 - 50 * owned, (pid, soft, owned)

    # each 201 the clients saw is a ledger row of that player and key
    got201 = sum(1 for a in by_key.values() if any(f[0] == 201 for f in a))
    rows = psql(stack, "SELECT count(*) FROM transactions WHERE kind = "
                       "'purchase' AND player_id::text = ANY(%s)", ids)
    assert rows == [(got201,)]
    assert ledger_holds(stack)
