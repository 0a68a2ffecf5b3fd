"""The economy (ngx_modules/economy): wallets, the store, inventories,
payments, admin grants, match rewards and achievements, against the real
stack.  Money and items move only in SQL transactions, so after every test
the ledger invariant holds: balances are the sum of the ledger."""

import json
import threading
import time
import uuid

import psycopg2
import redis
import requests

from auth_helpers import bearer, psql
from econ_helpers import (admin, buy, ledger_holds, secret, send_event,
                          wallet)
from mm_helpers import device_player, error_code


def test_a_new_player_starts_with_the_configured_balance(stack):
    pid, auth = device_player(stack)
    assert wallet(stack, auth) == {"player_id": pid, "soft": 1000, "hard": 0}
    assert wallet(stack, auth)["soft"] == 1000          # credited once
    rows = psql(stack, "SELECT kind, soft_currency_delta FROM transactions "
                       "WHERE player_id = %s", pid)
    assert rows == [("starting_balance", 1000)]
    assert ledger_holds(stack)


def test_the_catalog_lists_what_is_on_sale(stack):
    _, auth = device_player(stack)
    r = requests.get(stack.url("/store/catalog"), headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    items = {i["item_id"]: i for i in r.json()["items"]}
    assert items["potion.health"]["prices"] == {"soft": 50}
    assert items["hat.crown"]["prices"] == {"hard": 25}
    assert items["skin.red"]["max_per_player"] == 1

    # an item on sale tomorrow is not listed today
    r = requests.post(stack.url("/admin/catalog"), headers=admin(stack),
                      timeout=10,
                      json={"item_id": "promo.later", "name": "Later",
                            "kind": "skin", "price_soft": 10,
                            "available_from": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    time.sleep(1.2)
    r = requests.get(stack.url("/store/catalog"), headers=auth, timeout=10)
    assert "promo.later" not in {i["item_id"] for i in r.json()["items"]}
    assert buy(stack, auth, "promo.later").json()["error"]["code"] == \
        "item_unavailable"


def test_a_purchase_debits_adds_the_item_and_writes_the_ledger(stack):
    pid, auth = device_player(stack)
    r = buy(stack, auth, "potion.health", 3, key="first")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["item_id"] == "potion.health" and body["quantity"] == 3
    assert body["price"] == 150 and body["currency"] == "soft"
    assert body["balance"] == {"soft": 850, "hard": 0}
    inv = body["inventory_item"]
    assert inv["quantity"] == 3 and inv["equipped"] is False

    # a second purchase stacks
    r = buy(stack, auth, "potion.health", 2)
    assert r.json()["inventory_item"]["quantity"] == 5
    assert r.json()["inventory_item"]["inventory_item_id"] == \
        inv["inventory_item_id"]
    assert wallet(stack, auth)["soft"] == 750
    assert ledger_holds(stack)


def test_idempotency_keys_replay_refuse_and_wait(stack):
    pid, auth = device_player(stack)
    first = buy(stack, auth, "potion.health", 2, key="k-1")
    assert first.status_code == 201

    again = buy(stack, auth, "potion.health", 2, key="k-1")
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert wallet(stack, auth)["soft"] == 900        # charged once

    other = buy(stack, auth, "potion.health", 3, key="k-1")
    assert other.status_code == 422
    assert error_code(other) == "idempotency_key_reused"

    # a request holding the key (here: a session holding its lock) makes
    # the next one answer 409 at once rather than wait
    conn = psycopg2.connect(host="127.0.0.1", port=stack.pg_port,
                            dbname="game", user="postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))",
                        (pid, "k-2"))
        r = buy(stack, auth, key="k-2")
        assert r.status_code == 409, r.text
        assert error_code(r) == "idempotency_key_in_use"
        # released here, not by close(): the server ends the session (and
        # drops its locks) after close() has returned, and on a busy
        # machine the next purchase could still meet the lock
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s), "
                        "hashtext(%s))", (pid, "k-2"))
    finally:
        conn.close()
    # the key was not spent: it works once the other request is gone
    assert buy(stack, auth, key="k-2").status_code == 201

    # keys are per player: another player's "k-1" is theirs
    _, other_auth = device_player(stack)
    assert buy(stack, other_auth, key="k-1").status_code == 201


def test_insufficient_funds_is_402_with_the_balance_and_is_kept(stack):
    _, auth = device_player(stack)
    r = buy(stack, auth, "hat.crown", 1, "hard", key="crown")
    assert r.status_code == 402, r.text
    assert error_code(r) == "insufficient_funds"
    assert r.json()["balance"] == {"soft": 1000, "hard": 0}
    assert r.json()["price"] == 25
    # the key is spent on that answer
    again = buy(stack, auth, "hat.crown", 1, "hard", key="crown")
    assert again.status_code == 402 and again.content == r.content


def test_bad_purchases_are_refused_with_the_reason(stack):
    _, auth = device_player(stack)
    cases = [
        (dict(item="no.such.item"), 404, "unknown_item"),
        (dict(item="potion.health", quantity=0), 422, "invalid_quantity"),
        (dict(item="potion.health", quantity=100), 422, "invalid_quantity"),
        (dict(item="skin.red", quantity=2), 422, "invalid_quantity"),
        (dict(item="potion.health", currency="gems"), 422,
         "invalid_currency"),
        (dict(item="potion.health", currency="hard"), 422,
         "currency_not_accepted"),
        (dict(item=7), 422, "invalid_field"),
        (dict(key=False), 400, "idempotency_key_required"),
        (dict(key="x" * 256), 400, "invalid_idempotency_key"),
        (dict(key="tab\there"), 400, "invalid_idempotency_key"),
    ]
    for kw, status, code in cases:
        r = buy(stack, auth, **kw)
        assert r.status_code == status, (kw, r.text)
        assert error_code(r) == code, (kw, r.text)

    # one skin, once: the per-player limit
    assert buy(stack, auth, "skin.red").status_code == 201
    r = buy(stack, auth, "skin.red")
    assert r.status_code == 422 and r.json()["limit"] == 0

    assert requests.post(stack.url("/store/purchase"), timeout=10,
                         json={}).status_code == 401
    assert requests.get(stack.url("/store/purchase"), headers=auth,
                        timeout=10).status_code == 405
    assert wallet(stack, auth)["soft"] == 600
    assert ledger_holds(stack)


def test_others_see_only_the_equipped_loadout(stack):
    """No BOLA: another player's inventory shows what they wear, not what
    they own or how much; their items cannot be equipped by others."""
    owner_id, owner = device_player(stack)
    _, other = device_player(stack)
    potion = buy(stack, owner, "potion.health", 4).json()["inventory_item"]
    red = buy(stack, owner, "skin.red").json()["inventory_item"]
    blue = buy(stack, owner, "skin.blue").json()["inventory_item"]

    def equip(auth, item, what="equip"):
        return requests.post(stack.url("/inventory/%s/%s"
                                       % (item["inventory_item_id"], what)),
                             headers=auth, timeout=10)

    assert equip(owner, red).status_code == 200
    r = equip(owner, potion)
    assert r.status_code == 422 and error_code(r) == "not_equippable"
    # someone else's item does not exist for them
    r = equip(other, blue)
    assert r.status_code == 404 and error_code(r) == "no_item"

    mine = requests.get(stack.url("/inventory/" + owner_id), headers=owner,
                        timeout=10).json()
    assert len(mine["items"]) == 3
    assert {i["item_id"]: i["quantity"] for i in mine["items"]} == \
        {"potion.health": 4, "skin.red": 1, "skin.blue": 1}

    theirs = requests.get(stack.url("/inventory/" + owner_id), headers=other,
                          timeout=10).json()
    assert theirs["items"] == [{"item_id": "skin.red", "equipped": True,
                                "slot": "skin"}]

    # one item a slot: blue takes the skin slot from red
    assert equip(owner, blue).json()["equipped"] is True
    theirs = requests.get(stack.url("/inventory/" + owner_id), headers=other,
                          timeout=10).json()
    assert [i["item_id"] for i in theirs["items"]] == ["skin.blue"]
    assert equip(owner, blue, "unequip").json()["equipped"] is False
    theirs = requests.get(stack.url("/inventory/" + owner_id), headers=other,
                          timeout=10).json()
    assert theirs["items"] == []

    me = requests.get(stack.url("/inventory/me"), headers=owner, timeout=10)
    assert me.json()["player_id"] == owner_id
    for bad in (str(uuid.uuid4()), "nobody"):
        r = requests.get(stack.url("/inventory/" + bad), headers=owner,
                         timeout=10)
        assert r.status_code == 404 and error_code(r) == "no_player"


def test_transactions_are_paged_by_cursor(stack):
    _, auth = device_player(stack)
    for _ in range(4):
        assert buy(stack, auth).status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = requests.get(stack.url("/player/me/transactions"), headers=auth,
                         params=params, timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["transactions"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    kinds = [t["kind"] for t in seen]
    assert kinds == ["purchase"] * 4 + ["starting_balance"]
    ids = [int(t["transaction_id"]) for t in seen]
    assert ids == sorted(ids, reverse=True)
    for bad in ("x", "0", "-5"):
        r = requests.get(stack.url("/player/me/transactions"), headers=auth,
                         params={"cursor": bad}, timeout=10)
        assert r.status_code == 422
    r = requests.get(stack.url("/player/me/transactions"), headers=auth,
                     params={"limit": 500}, timeout=10)
    assert r.status_code == 422


# -- payments ---------------------------------------------------------------

def payment(pid, amount, event=None, kind="payment.succeeded", pay=None):
    return {"id": event or "evt_" + uuid.uuid4().hex, "type": kind,
            "data": {"payment_id": pay or "pay_" + uuid.uuid4().hex,
                     "player_id": pid, "hard": amount}}


def test_a_signed_payment_credits_once_and_a_refund_reverses_it(stack):
    pid, auth = device_player(stack)
    ev = payment(pid, 50)
    r = send_event(stack, ev)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "outcome": "credited"}
    assert wallet(stack, auth)["hard"] == 50

    # the gateway retries: nothing more
    r = send_event(stack, ev)
    assert r.json()["outcome"] == "duplicate"
    # another event for the same payment: nothing more either
    r = send_event(stack, payment(pid, 50, pay=ev["data"]["payment_id"]))
    assert r.json()["outcome"] == "duplicate"
    assert wallet(stack, auth)["hard"] == 50

    # spend some, then the payment is refunded: what is left goes back,
    # the balance never goes negative, the rest is a shortfall
    assert buy(stack, auth, "hat.crown", 1, "hard").status_code == 201
    r = send_event(stack, payment(pid, None, kind="payment.refunded",
                                  pay=ev["data"]["payment_id"]))
    assert r.json()["outcome"] == "reversed"
    assert wallet(stack, auth)["hard"] == 0
    assert psql(stack, "SELECT reversed, shortfall FROM econ_payments "
                       "WHERE payment_id = %s",
                ev["data"]["payment_id"]) == [(25, 25)]
    assert psql(stack, "SELECT status FROM transactions WHERE "
                       "idempotency_key = %s",
                "payment:" + ev["data"]["payment_id"]) == [("reversed",)]

    # a refund of a payment we never credited changes nothing
    r = send_event(stack, payment(pid, None, kind="payment.refunded"))
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    assert ledger_holds(stack)


def test_forged_and_stale_events_are_refused(stack):
    pid, auth = device_player(stack)
    ev = payment(pid, 1000)

    r = send_event(stack, ev, secret_value="x" * 40)
    assert r.status_code == 400 and error_code(r) == "invalid_signature"

    r = send_event(stack, ev, t=int(time.time()) - 301)
    assert r.status_code == 400
    assert error_code(r) == "timestamp_out_of_tolerance"

    body = json.dumps(ev).encode()
    for sig in (None, "garbage", "t=123", "v1=" + "0" * 64):
        headers = {"Content-Type": "application/json"}
        if sig:
            headers["Stripe-Signature"] = sig
        r = requests.post(stack.url("/payments/webhook"), data=body,
                          headers=headers, timeout=10)
        assert r.status_code == 400, (sig, r.text)

    # a signature over other bytes (the body changed on the way)
    from econ_helpers import signed_event
    good_body, headers = signed_event(stack, ev)
    r = requests.post(stack.url("/payments/webhook"),
                      data=good_body.replace(b"1000", b"9999"),
                      headers=headers, timeout=10)
    assert r.status_code == 400 and error_code(r) == "invalid_signature"

    # several v1 (the gateway rotating its secret): one good one will do
    r = send_event(stack, ev, extra_sigs=["ab" * 32])
    assert r.status_code == 200 and r.json()["outcome"] == "credited"
    assert wallet(stack, auth)["hard"] == 1000
    assert ledger_holds(stack)


# -- admin -------------------------------------------------------------------

def test_admin_grants_are_in_the_ledger_with_who_made_them(stack):
    pid, auth = device_player(stack)
    url = stack.url("/admin/players/%s/grant" % pid)
    grant = {"soft": 250, "item_id": "potion.health", "quantity": 2,
             "reason": "apology for downtime"}

    # a player's token is no admin credential, nor is nothing
    for headers in ({}, auth, {"Authorization": "Bearer " + "0" * 64}):
        r = requests.post(url, json=grant, timeout=10,
                          headers=dict(headers, **{"Idempotency-Key": "g1"}))
        assert r.status_code == 401, r.text

    h = dict(admin(stack), **{"Idempotency-Key": "g1"})
    r = requests.post(url, json=grant, headers=h, timeout=10)
    assert r.status_code == 201, r.text
    assert r.json()["balance"] == {"soft": 1250, "hard": 0}
    r = requests.post(url, json=grant, headers=h, timeout=10)
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
    assert wallet(stack, auth)["soft"] == 1250

    rows = psql(stack, "SELECT kind, actor, soft_currency_delta, "
                       "item_template_id, item_quantity_delta, "
                       "metadata->>'reason' FROM transactions "
                       "WHERE player_id = %s AND kind = 'grant'", pid)
    assert rows == [("grant", "ops", 250, "potion.health", 2,
                     "apology for downtime")]

    r = requests.post(url, json={"soft": -5000, "reason": "x"},
                      headers=dict(admin(stack),
                                   **{"Idempotency-Key": "g2"}), timeout=10)
    assert r.status_code == 422 and error_code(r) == "negative_balance"
    r = requests.post(url, json={"reason": "nothing"},
                      headers=dict(admin(stack),
                                   **{"Idempotency-Key": "g3"}), timeout=10)
    assert r.status_code == 422
    assert ledger_holds(stack)


# -- match rewards and achievements -----------------------------------------

def outcome(match, mode, players, reason="time"):
    return {"outcome": "applied", "match_id": match, "mode": mode,
            "region": "local", "reason": reason, "duration_ms": 60000,
            "players": players}


def publish(stack, o):
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    rds.xadd("mm:outcomes", {"match_id": o["match_id"],
                             "outcome": json.dumps(o)})


def wait_xp(stack, pid, want, timeout=10):
    end = time.monotonic() + timeout
    while True:
        xp = psql(stack, "SELECT xp FROM players WHERE id = %s", pid)[0][0]
        if xp == want:
            return
        assert time.monotonic() < end, (xp, want)
        time.sleep(0.2)


def test_match_rewards_once_per_match_and_none_for_cheaters(stack):
    w_id, w = device_player(stack)
    l_id, l = device_player(stack)
    c_id, c = device_player(stack)
    match = str(uuid.uuid4())
    o = outcome(match, "duel", [
        {"player_id": w_id, "team": 0, "result": "win", "flagged": False,
         "kills": 3, "deaths": 1},
        {"player_id": l_id, "team": 1, "result": "loss", "flagged": False,
         "kills": 1, "deaths": 3},
        {"player_id": c_id, "team": 1, "result": "loss", "flagged": True,
         "kills": 9, "deaths": 0}])
    publish(stack, o)
    wait_xp(stack, w_id, 100)
    wait_xp(stack, l_id, 40)
    publish(stack, o)           # delivered twice: applied once
    time.sleep(2)

    assert wallet(stack, w)["soft"] == 1000 + 100 + 100   # + first win
    assert wallet(stack, l)["soft"] == 1040
    assert wallet(stack, c)["soft"] == 1000
    assert psql(stack, "SELECT xp FROM players WHERE id = %s", c_id) == [(0,)]
    assert psql(stack, "SELECT matches, wins, kills FROM player_stats "
                       "WHERE player_id = %s", w_id) == [(1, 1, 3)]

    # the first win unlocked "first-win", once, with its 100 soft
    r = requests.get(stack.url("/player/%s/achievements" % w_id), timeout=10)
    assert r.status_code == 200
    assert [a["achievement_id"] for a in r.json()["achievements"]] == \
        ["first-win"]
    assert psql(stack, "SELECT count(*) FROM transactions WHERE player_id = "
                       "%s AND kind = 'achievement'", w_id) == [(1,)]
    assert requests.get(stack.url("/player/%s/achievements" % l_id),
                        timeout=10).json()["achievements"] == []
    assert requests.get(stack.url("/player/%s/achievements" % uuid.uuid4()),
                        timeout=10).status_code == 404

    # an aborted match is worth nothing
    aborted = outcome(str(uuid.uuid4()), "duel", [
        {"player_id": l_id, "team": 0, "result": "abandoned",
         "flagged": False, "kills": 0, "deaths": 0}], reason="abort")
    publish(stack, aborted)
    time.sleep(2)
    assert wallet(stack, l)["soft"] == 1040
    assert ledger_holds(stack)


def test_a_real_match_rewards_its_players(stack):
    """The whole way: a result from a server, applied by the matchmaker,
    its outcome on mm:outcomes, the economy's rewards."""
    from mm_helpers import FakeServer, join, wait_status
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    server = FakeServer(stack, 41320, mode="results")
    try:
        players = [device_player(stack) for _ in range(2)]
        for _, auth in players:
            assert join(stack, auth, mode="results").status_code == 202
        sts = [wait_status(stack, auth, "matched") for _, auth in players]
        match = sts[0]["match_id"]
        ids = [p for p, _ in players]
        server.publish(rds, match, players=ids, winner=ids[0])
        wait_xp(stack, ids[0], 100)
        wait_xp(stack, ids[1], 40)
        assert wallet(stack, players[0][1])["soft"] == 1100 + 100  # + win
    finally:
        server.stop()


def test_the_ledger_invariant_holds_for_everyone(stack):
    assert ledger_holds(stack)
    assert psql(stack, "SELECT count(*) FROM players WHERE soft_currency < 0 "
                       "OR hard_currency < 0") == [(0,)]


# -- the inventory cache ------------------------------------------------------

def inventory(stack, auth, owner="me"):
    r = requests.get(stack.url("/inventory/" + owner), headers=auth,
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def cached(rds, key, timeout=2.0):
    """Whether the cache holds "key" (it is stored right after the answer
    that read it, without holding the answer up)."""
    end = time.monotonic() + timeout
    while rds.get(key) is None:
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_inventories_are_cached_and_every_write_drops_them(stack):
    pid, auth = device_player(stack)
    _, other = device_player(stack)
    rds = redis.Redis(port=stack.redis_port, decode_responses=True)
    assert inventory(stack, auth)["items"] == []
    assert cached(rds, "econ:inv:own:" + pid)
    inventory(stack, other, pid)
    assert cached(rds, "econ:inv:pub:" + pid)

    # a purchase drops both documents before it answers
    item = buy(stack, auth, "skin.red").json()["inventory_item"]
    assert rds.get("econ:inv:own:" + pid) is None
    assert [i["item_id"] for i in inventory(stack, auth)["items"]] == \
        ["skin.red"]
    requests.post(stack.url("/inventory/%s/equip"
                            % item["inventory_item_id"]),
                  headers=auth, timeout=10)
    assert [i["item_id"] for i in inventory(stack, other, pid)["items"]] == \
        ["skin.red"]

    # a refused purchase changes nothing and drops nothing
    inventory(stack, auth)
    assert cached(rds, "econ:inv:own:" + pid)
    assert buy(stack, auth, "skin.red").status_code == 422
    assert rds.get("econ:inv:own:" + pid) is not None


def test_reads_racing_writes_never_leave_a_stale_inventory(stack):
    """A read that may have read before a write committed must not cache
    what it read: after any mix of concurrent purchases and reads, the
    cached inventory is the database's."""
    pid, auth = device_player(stack)
    errors = []

    def reader(stop):
        s = requests.Session()
        while not stop.is_set():
            r = s.get(stack.url("/inventory/me"), headers=auth, timeout=10)
            if r.status_code != 200:
                errors.append(r.text)

    stop = threading.Event()
    readers = [threading.Thread(target=reader, args=(stop,))
               for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for _ in range(18):
            assert buy(stack, auth, "potion.health").status_code == 201
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors[:3]
    time.sleep(0.2)
    items = inventory(stack, auth)["items"]
    assert items[0]["quantity"] == 18
    assert psql(stack, "SELECT quantity FROM inventory_items WHERE "
                       "player_id = %s", pid) == [(18,)]


def test_the_economy_works_while_redis_is_down(ready_stack):
    s = ready_stack
    pid, auth = device_player(s)
    assert buy(s, auth).status_code == 201
    s.run("stop", "redis")
    try:
        assert inventory(s, auth)["items"][0]["quantity"] == 1
        assert buy(s, auth).status_code == 201
        assert inventory(s, auth)["items"][0]["quantity"] == 2
    finally:
        s.run("start", "redis")
    s.wait_ready()
    # Redis came back empty: the next reads are fresh and cached again
    assert inventory(s, auth)["items"][0]["quantity"] == 2
