"""Sessions and sensitive changes (issue 9): a second factor, linking and
erasure need a recent login, not merely a token; logout, erasure and a
reused refresh token revoke the session's access tokens in every worker,
also in workers started later."""

import base64
import json
import time
import uuid

import jwt
import requests

from auth_helpers import (PASSWORD, bearer, error_code, key_pem, login,
                          logout, new_player, refresh, unique)


GUARDED = "/test/guarded/x"


def claims_of(token):
    p = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def forged_like(s, token, **change):
    """The token's claims, changed, signed with the stack's key 1: what a
    token issued at another time would have said."""
    c = claims_of(token)
    c.update(change)
    c = {k: v for k, v in c.items() if v is not None}
    return jwt.encode(c, key_pem(s, 1), algorithm="ES256",
                      headers={"kid": "1", "typ": "at+jwt"})


def refused_everywhere(s, token, timeout=5.0):
    """The token is refused by every worker, within a bounded wait: each
    request on a new connection may reach either worker."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 12:
        code = requests.get(s.url(GUARDED), headers=bearer(token),
                            timeout=5).status_code
        streak = streak + 1 if code == 401 else 0
        if streak == 0 and time.monotonic() > deadline:
            return False
        if streak == 0:
            time.sleep(0.1)
    return True


def accepted(s, token):
    return requests.get(s.url(GUARDED), headers=bearer(token),
                        timeout=5).status_code == 200


# --- recent authentication ------------------------------------------------------

def test_tokens_carry_session_and_auth_time(stack):
    s = stack
    t, _, _ = new_player(s)
    c = claims_of(t["access_token"])
    assert uuid.UUID(c["sid"])
    assert abs(c["auth_time"] - time.time()) < 60

    # a refreshed token keeps the session and the time of the login
    time.sleep(1.1)
    r = refresh(s, t["refresh_token"])
    assert r.status_code == 200, r.text
    c2 = claims_of(r.json()["access_token"])
    assert c2["sid"] == c["sid"]
    assert c2["auth_time"] == c["auth_time"]
    assert c2["iat"] > c["iat"]


def test_sensitive_changes_need_a_recent_login(stack):
    s = stack
    t, username, _ = new_player(s)
    stale = forged_like(s, t["access_token"], auth_time=int(time.time()) - 3600)
    unknown = forged_like(s, t["access_token"], auth_time=None)

    for token in (stale, unknown):
        assert accepted(s, token), "still a valid token for everything else"
        r = requests.post(s.url("/auth/mfa/totp"), headers=bearer(token),
                          timeout=5)
        assert r.status_code == 401, r.text
        assert error_code(r) == "insufficient_user_authentication"
        assert "max_age=" in r.headers["WWW-Authenticate"]

        r = requests.delete(s.url("/player/me"), headers=bearer(token),
                            timeout=5)
        assert r.status_code == 401, r.text
        assert error_code(r) == "insufficient_user_authentication"

    # after a login, the same changes go through
    fresh = login(s, username).json()["access_token"]
    r = requests.post(s.url("/auth/mfa/totp"), headers=bearer(fresh),
                      timeout=5)
    assert r.status_code == 200, r.text


def test_link_needs_a_recent_login(stack):
    s = stack
    g = requests.post(s.url("/auth/device"), timeout=5,
                      json={"device_id": "dev-" + uuid.uuid4().hex}).json()
    stale = forged_like(s, g["access_token"],
                        auth_time=int(time.time()) - 3600)
    name = unique("late")
    body = {"username": name, "email": name + "@example.com",
            "password": PASSWORD}
    r = requests.post(s.url("/auth/link"), json=body, headers=bearer(stale),
                      timeout=10)
    assert r.status_code == 401, r.text
    assert error_code(r) == "insufficient_user_authentication"

    r = requests.post(s.url("/auth/link"), json=body,
                      headers=bearer(g["access_token"]), timeout=10)
    assert r.status_code == 200, r.text


def test_link_does_not_say_an_email_is_taken(stack):
    s = stack
    _, _, email = new_player(s)
    g = requests.post(s.url("/auth/device"), timeout=5,
                      json={"device_id": "dev-" + uuid.uuid4().hex}).json()
    name = unique("l")
    r = requests.post(s.url("/auth/link"), headers=bearer(g["access_token"]),
                      json={"username": name, "email": email,
                            "password": PASSWORD}, timeout=10)
    assert r.status_code == 409
    assert error_code(r) == "credentials_unavailable"
    assert "email" not in error_code(r)


# --- revocation ------------------------------------------------------------------

def test_logout_revokes_the_sessions_access_tokens(stack):
    s = stack
    t, username, _ = new_player(s)
    other = login(s, username).json()          # another session
    assert accepted(s, t["access_token"])

    r = logout(s, t["refresh_token"])
    assert r.status_code == 200

    assert refused_everywhere(s, t["access_token"])
    assert accepted(s, other["access_token"]), "only that session ends"


def test_refresh_reuse_revokes_the_sessions_access_tokens(stack):
    s = stack
    t, _, _ = new_player(s)
    r = refresh(s, t["refresh_token"])
    assert r.status_code == 200
    thief = r.json()

    # the spent token again: the family, and its access tokens, go
    r = refresh(s, t["refresh_token"])
    assert r.status_code == 401
    assert refused_everywhere(s, thief["access_token"])
    assert refused_everywhere(s, t["access_token"])


def test_revocations_survive_a_reload(stack):
    s = stack
    t, _, _ = new_player(s)
    r = logout(s, t["refresh_token"])
    assert r.status_code == 200
    assert refused_everywhere(s, t["access_token"])

    # new workers know it from the start: they read the list when they begin
    assert s.nginx("-s", "reload").returncode == 0
    time.sleep(1.5)
    s.wait_ready()
    for _ in range(12):
        assert requests.get(s.url(GUARDED), headers=bearer(t["access_token"]),
                            timeout=5).status_code == 401


def test_erasure_revokes_every_token_of_the_player(stack):
    s = stack
    t, username, _ = new_player(s)
    second = login(s, username).json()
    r = requests.delete(s.url("/player/me"), headers=bearer(t["access_token"]),
                        timeout=5)
    assert r.status_code == 200, r.text
    assert refused_everywhere(s, t["access_token"])
    assert refused_everywhere(s, second["access_token"])
