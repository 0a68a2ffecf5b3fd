"""Helpers for the auth tests: accounts, tokens, TOTP codes, database and
Redis access, all against the real stack of conftest.py."""

import base64
import hashlib
import hmac
import os
import struct
import subprocess
import time
import uuid

import requests

PASSWORD = "correct horse battery staple"


def unique(prefix="p"):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


def register(s, username=None, email=None, password=PASSWORD):
    username = username or unique()
    email = email or "%s@example.com" % username.lower()
    r = requests.post(s.url("/auth/register"), timeout=10,
                      json={"username": username, "email": email,
                            "password": password})
    return r, username, email


def login(s, login_name, password=PASSWORD, otp=None):
    body = {"login": login_name, "password": password}
    if otp is not None:
        body["otp"] = otp
    return requests.post(s.url("/auth/login"), json=body, timeout=10)


def refresh(s, refresh_token):
    return requests.post(s.url("/auth/refresh"), timeout=5,
                         json={"refresh_token": refresh_token})


def logout(s, refresh_token):
    return requests.post(s.url("/auth/logout"), timeout=5,
                         json={"refresh_token": refresh_token})


def new_player(s):
    """A registered, logged-in player: (tokens, username, email)."""
    r, username, email = register(s)
    assert r.status_code == 201, r.text
    r = login(s, username)
    assert r.status_code == 200, r.text
    return r.json(), username, email


def bearer(token):
    return {"Authorization": "Bearer " + token}


def psql(s, sql, *args):
    """Run one statement as the superuser; rows as lists of strings."""
    import psycopg2
    conn = psycopg2.connect(host="127.0.0.1", port=s.pg_port, dbname="game",
                            user="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def redis_cli(s, *args):
    return subprocess.run(["redis-cli", "-p", str(s.redis_port)] + list(args),
                          capture_output=True, text=True, check=True).stdout


def key_pem(s, n):
    with open(os.path.join(s.var, "keys", "jwt-%d.pem" % n), "rb") as f:
        return f.read()


def totp(secret_b32, at=None, step=30):
    """RFC 6238 with SHA-1 and 6 digits, written out independently."""
    secret_b32 += "=" * (-len(secret_b32) % 8)
    key = base64.b32decode(secret_b32)
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % code


def error_code(r):
    return r.json()["error"]["code"]
