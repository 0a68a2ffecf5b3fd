"""Access tokens and the game_auth_jwt guard: tokens are checked by an
independent implementation (python3-jwt) given only the JWKS, and every
kind of forged or stale token is refused, also in front of a plain
proxy_pass location."""

import base64
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth_helpers import bearer, key_pem, new_player


GUARDED = "/test/guarded/thing"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(sub, **change):
    now = int(time.time())
    c = {"iss": "game", "aud": "game", "sub": sub, "iat": now, "nbf": now,
         "exp": now + 300, "jti": uuid.uuid4().hex}
    c.update(change)
    return {k: v for k, v in c.items() if v is not None}


def sign(s, c, kid="1", key=None, headers=None):
    key = key if key is not None else key_pem(s, int(kid))
    h = {"kid": kid, "typ": "at+jwt"}
    h.update(headers or {})
    return jwt.encode(c, key, algorithm="ES256", headers=h)


def guarded(s, token):
    return requests.get(s.url(GUARDED), headers=bearer(token), timeout=5)


@pytest.fixture(scope="module")
def player(stack):
    t, _, _ = new_player(stack)
    return t


def test_jwks_verifies_our_tokens_independently(stack, player):
    r = requests.get(stack.url("/.well-known/jwks.json"), timeout=5)
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert {k["kid"] for k in keys} == {"0", "1"}
    for k in keys:
        assert k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256"
        assert "d" not in k, "never publish the private part"

    token = player["access_token"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": "1", "typ": "at+jwt"}

    jwk = jwt.PyJWKSet.from_dict(r.json())
    key = next(k for k in jwk.keys if k.key_id == header["kid"])
    c = jwt.decode(token, key.key, algorithms=["ES256"], audience="game",
                   issuer="game",
                   options={"require": ["exp", "iat", "sub", "jti"]})
    assert c["sub"] == player["player_id"]
    assert c["exp"] - c["iat"] == 900

    # and a token from the previous key is still good (rotation)
    old = sign(stack, claims(player["player_id"]), kid="0")
    jwt.decode(old, next(k for k in jwk.keys if k.key_id == "0").key,
               algorithms=["ES256"], audience="game", issuer="game")
    r = guarded(stack, old)
    assert r.status_code == 200, r.text


def test_guard_in_front_of_proxy_pass(stack, player):
    r = guarded(stack, player["access_token"])
    assert r.status_code == 200, r.text
    assert r.json() == {"player_id": player["player_id"],
                        "uri": "/test/upstream/thing"}

    r = requests.get(stack.url(GUARDED), timeout=5)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert r.json()["error"]["code"] == "invalid_token"

    r = requests.get(stack.url(GUARDED), timeout=5,
                     headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401


def refused(s, token):
    r = guarded(s, token)
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert r.json()["error"]["code"] == "invalid_token"


def test_guard_refuses_forgeries(stack, player):
    s = stack
    pid = player["player_id"]
    good = player["access_token"]
    h, p, sig = good.split(".")

    # alg none, with and without a signature
    none_h = b64(json.dumps({"alg": "none", "kid": "1", "typ": "at+jwt"})
                 .encode())
    refused(s, "%s.%s." % (none_h, p))
    refused(s, "%s.%s.%s" % (none_h, p, sig))

    # HS256 keyed with the public key (the classic confusion attack)
    pub = serialization.load_pem_private_key(key_pem(s, 1), None) \
        .public_key().public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_h = b64(json.dumps({"alg": "HS256", "kid": "1", "typ": "at+jwt"},
                          separators=(",", ":")).encode())
    import hashlib
    import hmac as hmac_
    body = ("%s.%s" % (hs_h, p)).encode()
    refused(s, "%s.%s" % (body.decode(),
                          b64(hmac_.new(pub, body, hashlib.sha256).digest())))

    # tampered payload: another player's id under our signature
    c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    c["sub"] = str(uuid.uuid4())
    refused(s, "%s.%s.%s" % (h, b64(json.dumps(c).encode()), sig))

    # a flipped signature bit; a truncated token
    bad = bytearray(base64.urlsafe_b64decode(sig + "=="))
    bad[10] ^= 1
    refused(s, "%s.%s.%s" % (h, p, b64(bytes(bad))))
    refused(s, "%s.%s" % (h, p))
    refused(s, "garbage")

    # a stranger's key, under our kid
    stranger = ec.generate_private_key(ec.SECP256R1())
    refused(s, sign(s, claims(pid), key=stranger))

    # unknown kid, wrong typ, extra header fields (jku)
    refused(s, sign(s, claims(pid), kid="1", headers={"kid": "9"}))
    refused(s, sign(s, claims(pid), headers={"typ": "JWT"}))
    refused(s, sign(s, claims(pid), headers={"jku": "http://evil/"}))


def test_guard_refuses_wrong_claims(stack, player):
    s = stack
    pid = player["player_id"]
    now = int(time.time())

    # sanity: the helper makes tokens the guard accepts
    assert guarded(s, sign(s, claims(pid))).status_code == 200

    refused(s, sign(s, claims(pid, exp=now - 120)))           # expired
    refused(s, sign(s, claims(pid, nbf=now + 120)))           # not yet
    refused(s, sign(s, claims(pid, iat=now + 120)))           # from the future
    refused(s, sign(s, claims(pid, aud="other")))             # wrong audience
    refused(s, sign(s, claims(pid, iss="https://evil")))      # wrong issuer
    refused(s, sign(s, claims(pid, exp=None)))                # no expiry
    refused(s, sign(s, claims("not-a-uuid")))                 # bad subject
    refused(s, sign(s, claims(pid, aud=["game"])))            # aud as a list

    # the leeway (30 s by default) forgives small clock skew
    assert guarded(s, sign(s, claims(pid, exp=now - 5))).status_code == 200
    assert guarded(s, sign(s, claims(pid, nbf=now + 5))).status_code == 200


def test_payloads_up_to_the_limit_are_read_whole(stack, player):
    """Claims of up to 2,048 bytes (the verifier's buffer) are read, to
    the last byte; one more is refused.  The length check once estimated
    the decoded size from the base64url length, rounding up to whole
    groups, and refused correctly signed payloads of 2,047 and 2,048
    bytes."""
    def of_length(n):
        c = claims(player["player_id"], pad="")
        size = len(json.dumps(c, separators=(",", ":")))
        c["pad"] = "x" * (n - size)
        assert len(json.dumps(c, separators=(",", ":"))) == n
        return sign(stack, c)

    for n in (2045, 2046, 2047, 2048):
        r = guarded(stack, of_length(n))
        assert r.status_code == 200, (n, r.text)
        assert r.json()["player_id"] == player["player_id"]
    assert guarded(stack, of_length(2049)).status_code == 401
