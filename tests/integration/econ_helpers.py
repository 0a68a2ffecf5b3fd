"""Helpers for the economy tests: purchases, admin and webhook requests,
and the ledger invariant, against the real stack of conftest.py."""

import hashlib
import hmac
import json
import os
import time
import uuid

import requests

from auth_helpers import psql


def buy(s, auth, item="potion.health", quantity=1, currency="soft",
        key=None, **extra):
    headers = dict(auth)
    if key is not False:
        headers["Idempotency-Key"] = key or uuid.uuid4().hex
    body = {"item_id": item, "quantity": quantity, "currency": currency}
    body.update(extra)
    return requests.post(s.url("/store/purchase"), json=body,
                         headers=headers, timeout=20)


def wallet(s, auth):
    r = requests.get(s.url("/player/me/wallet"), headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def secret(s, name):
    with open(os.path.join(s.var, "keys", name)) as f:
        return f.read().strip()


def admin(s):
    return {"Authorization": "Bearer " + secret(s, "econ-admin.key")}


def signed_event(s, event, t=None, secret_value=None, extra_sigs=()):
    """A webhook request's body and headers, signed as the gateway does."""
    body = json.dumps(event).encode()
    t = int(time.time()) if t is None else t
    key = (secret_value or secret(s, "webhook.key")).encode()
    mac = hmac.new(key, b"%d." % t + body, hashlib.sha256).hexdigest()
    sigs = ",".join(["v1=" + x for x in list(extra_sigs) + [mac]])
    return body, {"Content-Type": "application/json",
                  "Stripe-Signature": "t=%d,%s" % (t, sigs)}


def send_event(s, event, **kw):
    body, headers = signed_event(s, event, **kw)
    return requests.post(s.url("/payments/webhook"), data=body,
                         headers=headers, timeout=10)


def ledger_holds(s):
    """Every player's balances are the sum of their ledger."""
    return psql(s, "SELECT * FROM econ_ledger_check()") == []
