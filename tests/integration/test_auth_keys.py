"""One key set for the whole nginx (game_jwt_key): access tokens,
connection tickets and the JWKS come from it, and rotating it works as the
README says: a key added last signs while the old key's tokens still
verify; a key removed stops verifying at once."""

import os
import re
import subprocess
import time

import jwt
import requests

from auth_helpers import bearer, new_player


GUARDED = "/test/guarded/x"


def jwks(s):
    return {k["kid"]: k for k in
            requests.get(s.url("/.well-known/jwks.json"), timeout=5)
            .json()["keys"]}


def reload_with(s, conf):
    with open(s.nginx_conf, "w") as f:
        f.write(conf)
    r = s.nginx("-s", "reload")
    assert r.returncode == 0, r.stderr
    # the old workers may answer for a moment: wait for the new set
    time.sleep(1.5)
    s.wait_ready()


def make_key(s, n):
    path = os.path.join(s.var, "keys", "jwt-%d.pem" % n)
    if not os.path.exists(path):
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", path],
                       check=True, capture_output=True)
    return path


def test_key_rotation(stack):
    s = stack
    new_key = make_key(s, 2)

    old, _, _ = new_player(s)
    assert jwt.get_unverified_header(old["access_token"])["kid"] == "1"

    with open(s.nginx_conf) as f:
        original = f.read()
    line = re.search(r"\n( *)game_jwt_key +1 (\S+);\n", original)
    assert line, "test.conf declares key 1"
    indent, path1 = line.group(1), line.group(2)

    added = original.replace(
        line.group(0),
        "%s%sgame_jwt_key 2 %s;\n" % (line.group(0), indent, new_key), 1)
    removed = added.replace(line.group(0), "\n", 1)

    try:
        # added last: it signs, and the old key's tokens still verify
        reload_with(s, added)
        assert set(jwks(s)) == {"0", "1", "2"}
        fresh, _, _ = new_player(s)
        assert jwt.get_unverified_header(fresh["access_token"])["kid"] == "2"
        for _ in range(6):
            assert requests.get(s.url(GUARDED), timeout=5,
                                headers=bearer(old["access_token"])
                                ).status_code == 200
            assert requests.get(s.url(GUARDED), timeout=5,
                                headers=bearer(fresh["access_token"])
                                ).status_code == 200

        # removed: its tokens stop verifying, in every new worker
        reload_with(s, removed)
        assert set(jwks(s)) == {"0", "2"}
        for _ in range(6):
            assert requests.get(s.url(GUARDED), timeout=5,
                                headers=bearer(old["access_token"])
                                ).status_code == 401
            assert requests.get(s.url(GUARDED), timeout=5,
                                headers=bearer(fresh["access_token"])
                                ).status_code == 200
    finally:
        reload_with(s, original)

    assert path1.endswith("jwt-1.pem")


def test_use_verify_publishes_without_signing(stack):
    s = stack
    new_key = make_key(s, 3)

    with open(s.nginx_conf) as f:
        original = f.read()
    line = re.search(r"\n( *)game_jwt_key +1 (\S+);\n", original)
    staged = original.replace(
        line.group(0),
        "%s%sgame_jwt_key 3 %s use=verify;\n" % (line.group(0),
                                                 line.group(1), new_key), 1)
    try:
        reload_with(s, staged)
        assert "3" in jwks(s), "published ahead of signing"
        t, _, _ = new_player(s)
        assert jwt.get_unverified_header(t["access_token"])["kid"] == "1"
    finally:
        reload_with(s, original)


def test_access_tokens_are_not_connection_tickets(stack):
    """One key set signs both kinds; the header's typ keeps them apart."""
    s = stack
    t, _, _ = new_player(s)
    c = jwt.decode(t["access_token"], options={"verify_signature": False})
    ticket = jwt.encode(c, open(os.path.join(s.var, "keys", "jwt-1.pem"),
                                "rb").read(), algorithm="ES256",
                        headers={"kid": "1", "typ": "JWT"})
    assert requests.get(s.url(GUARDED), headers=bearer(ticket),
                        timeout=5).status_code == 401
