"""Hardening of the auth module (issue 9): a device id is no password for a
linked account, failed logins are counted before any hashing, the guard
follows nginx's access-phase contract (satisfy any, error_page), and
hashing in threads survives a worker cut short on reload."""

import concurrent.futures
import re
import time
import uuid

import requests

from auth_helpers import (PASSWORD, bearer, error_code, login, new_player,
                          register, totp, unique)


def device_login(s, device):
    return requests.post(s.url("/auth/device"), json={"device_id": device},
                         timeout=10)


# --- a device id stops being a credential once the account is linked -------

def test_device_id_no_longer_logs_in_a_linked_account(stack):
    s = stack
    device = "dev-" + uuid.uuid4().hex
    r = device_login(s, device)
    assert r.status_code == 200, r.text
    guest = r.json()

    name = unique("linked")
    r = requests.post(s.url("/auth/link"), headers=bearer(guest["access_token"]),
                      json={"username": name, "email": name + "@example.com",
                            "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text

    # second factor on, as in the report: the password alone is not enough
    t = login(s, name).json()
    auth = bearer(t["access_token"])
    secret = requests.post(s.url("/auth/mfa/totp"), headers=auth,
                           timeout=5).json()["secret"]
    r = requests.post(s.url("/auth/mfa/totp/confirm"), headers=auth,
                      json={"otp": totp(secret, time.time() - 30)}, timeout=5)
    assert r.status_code == 200, r.text
    assert error_code(login(s, name)) == "mfa_required"

    # the device id is no longer a way in, with or without MFA
    r = device_login(s, device)
    assert r.status_code == 401, r.text
    assert error_code(r) == "account_linked"
    assert "access_token" not in r.text


def test_guest_device_login_keeps_working(stack):
    s = stack
    device = "dev-" + uuid.uuid4().hex
    first = device_login(s, device)
    again = device_login(s, device)
    assert first.status_code == again.status_code == 200
    assert first.json()["player_id"] == again.json()["player_id"]
    other = device_login(s, "dev-" + uuid.uuid4().hex)
    assert other.json()["player_id"] != first.json()["player_id"]


# --- failed logins are counted before hashing --------------------------------

def test_concurrent_wrong_passwords_hash_at_most_the_threshold(stack):
    s = stack
    r, username, _ = register(s)
    assert r.status_code == 201

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(
            lambda i: login(s, username, password="wrong password %d" % i)
            .status_code, range(30)))

    # the threshold (5) is the number of guesses, however they arrive
    assert codes.count(401) <= 5, codes
    assert set(codes) <= {401, 429}, codes
    assert codes.count(429) >= 25, codes

    r = login(s, username)
    assert r.status_code == 429, "a correct password after the lock: " + r.text


def test_a_right_guess_among_a_storm_does_not_pass_the_lock(stack):
    s = stack
    r, username, _ = register(s)
    assert r.status_code == 201

    def one(i):
        pw = PASSWORD if i == 20 else "wrong password %d" % i
        return login(s, username, password=pw).status_code

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(one, range(30)))

    assert codes.count(401) + codes.count(200) <= 5, codes


def test_username_and_email_share_one_counter(stack):
    s = stack
    r, username, email = register(s)
    assert r.status_code == 201

    for name in (username, email, username.upper(), email.upper(), username):
        assert login(s, name, password="wrong password!").status_code == 401

    r = login(s, email)
    assert r.status_code == 429, r.text
    assert error_code(r) == "too_many_attempts"


def test_unknown_names_back_off_like_real_ones(stack):
    s = stack
    ghost = unique("ghost")
    codes = [login(s, ghost).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429], codes


# --- the guard and nginx's access phase ---------------------------------------

def test_guard_with_satisfy_any(stack):
    s = stack
    t, _, _ = new_player(s)

    # allowed by address: no token needed, and none is looked at
    r = requests.get(s.url("/test/satisfy-allow/x"), timeout=5)
    assert r.status_code == 200, r.text

    # denied by address: the token lets the request in
    r = requests.get(s.url("/test/satisfy-deny/x"), timeout=5,
                     headers=bearer(t["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["player_id"] == t["player_id"]

    # neither: our 401, in JSON, with the challenge
    r = requests.get(s.url("/test/satisfy-deny/x"), timeout=5)
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert error_code(r) == "invalid_token"
    assert r.headers["Content-Type"].startswith("application/json")


def test_guard_with_error_page(stack):
    s = stack
    r = requests.get(s.url("/test/error-page/x"), timeout=5)
    assert r.status_code == 401, r.text
    assert r.json() == {"login": "needed"}

    t, _, _ = new_player(s)
    r = requests.get(s.url("/test/error-page/x"), timeout=5,
                     headers=bearer(t["access_token"]))
    assert r.status_code == 200, r.text


def test_guard_default_401_is_json_for_head_and_post(stack):
    s = stack
    r = requests.head(s.url("/test/guarded/x"), timeout=5)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    r = requests.post(s.url("/test/guarded/x"), json={"a": 1}, timeout=5)
    assert r.status_code == 401 and error_code(r) == "invalid_token"


# --- hashing threads and a worker cut short -------------------------------------

def test_reload_with_shutdown_timeout_during_a_login_storm(stack):
    """worker_shutdown_timeout ends the old workers' requests while their
    passwords are still being hashed: no crash, no alert."""
    s = stack
    with open(s.nginx_conf) as f:
        original = f.read()
    short = re.sub(r"\nevents \{", "\nworker_shutdown_timeout 100ms;\n\nevents {",
                   original, count=1)
    assert short != original

    def storm(stop):
        # unknown names: every one costs a hash, none is locked out
        n = 0
        while time.monotonic() < stop:
            try:
                login(s, unique("ghost"), password="not it, %d" % n)
            except requests.RequestException:
                pass        # cut by the shutdown: expected
            n += 1

    try:
        with open(s.nginx_conf, "w") as f:
            f.write(short)
        assert s.nginx("-s", "reload").returncode == 0
        s.wait_ready()
        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            stop = time.monotonic() + 4
            futures = [pool.submit(storm, stop) for _ in range(48)]
            for _ in range(4):
                time.sleep(0.6)
                assert s.nginx("-s", "reload").returncode == 0
            for f in futures:
                f.result()
    finally:
        with open(s.nginx_conf, "w") as f:
            f.write(original)
        s.nginx("-s", "reload")
        s.wait_ready()

    # the old workers are gone once they are no longer listed
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ps = open("/proc/%d/task/%d/children" % (s.pid("nginx"),
                                                  s.pid("nginx"))).read()
        if len(ps.split()) <= 2:
            break
        time.sleep(0.2)
    s.assert_clean_error_log()


# --- logs -----------------------------------------------------------------------

def test_client_mistakes_log_at_info_without_personal_data(stack):
    s = stack
    path = "%s/log/nginx-error.log" % s.var
    start = len(open(path, "rb").read())

    r, username, email = register(s)
    assert r.status_code == 201
    secret = "not the password, but secret"
    for _ in range(6):
        login(s, email, password=secret)                   # then locked
    login(s, unique("nobody") + "@example.com", password=secret)
    requests.get(s.url("/test/guarded/x"), timeout=5,
                 headers=bearer("not.a.token"))
    requests.post(s.url("/auth/login"), data="{", timeout=5,
                  headers={"Content-Type": "application/json"})
    requests.post(s.url("/auth/device"), json={"device_id": "x"}, timeout=5)
    register(s, email=email)                                # taken address
    register(s, username=username.upper())                  # taken name
    other, _, _ = new_player(s)
    r = requests.patch(s.url("/player/me"), json={"username": username},
                       headers=bearer(other["access_token"]), timeout=5)
    assert r.status_code == 409

    time.sleep(0.5)
    with open(path, "rb") as f:
        f.seek(start)
        new = f.read().decode(errors="replace")

    # what auth logs, itself or through the pools (other tests' reloads may
    # still be logging their workers' exits meanwhile)
    for line in new.splitlines():
        if "game auth" in line or 'statement "game_auth_' in line:
            assert not re.search(r"\[(warn|error|crit|alert|emerg)\]",
                                 line), line
    for value in (username, username.upper(), email, secret):
        assert value not in new
