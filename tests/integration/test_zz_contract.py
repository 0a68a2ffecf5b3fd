"""docs/openapi.yaml against the linter and against real answers.

This module runs after every other one (its name, and conftest's
pytest_collection_modifyitems): by then the recorder (contract.py) has seen
every answer the suite got from the stack, and the last test checks them
against the contract.
"""

import copy
import os
import re
import subprocess
import uuid

import requests

import contract

ROOT = contract.ROOT
DOCS = os.path.join(ROOT, "docs")
REDOCLY = os.path.join(DOCS, "node_modules", ".bin", "redocly")


def lint(path):
    env = dict(os.environ, REDOCLY_TELEMETRY="off",
               REDOCLY_SUPPRESS_UPDATE_NOTICE="true", NO_COLOR="1")
    return subprocess.run(
        [REDOCLY, "lint", "--config", os.path.join(DOCS, "redocly.yaml"),
         "--format=stylish", path],
        cwd=DOCS, env=env, capture_output=True, text=True, timeout=120)


def ensure_linter():
    """`make test` installs the linter (make docs-tools); a bare pytest
    run installs it the same way, from docs/package-lock.json."""
    if not os.path.exists(REDOCLY):
        r = subprocess.run(["make", "-s", "-C", ROOT, "docs-tools"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(REDOCLY)


def test_spec_passes_the_linter():
    ensure_linter()
    r = lint(contract.SPEC_PATH)
    assert r.returncode == 0, r.stdout + r.stderr


def test_linter_refuses_a_broken_spec(tmp_path):
    """The lint step can fail: a reference to nothing is an error."""
    ensure_linter()
    broken = open(contract.SPEC_PATH).read().replace(
        "$ref: '#/components/schemas/Party'",
        "$ref: '#/components/schemas/NoSuchSchema'", 1)
    path = tmp_path / "openapi.yaml"
    path.write_text(broken)
    r = lint(str(path))
    assert r.returncode != 0
    assert "no-unresolved-refs" in r.stdout + r.stderr


def sample(method, path, status, body, content_type="application/json",
           headers=None):
    return {"method": method, "path": path, "url": "http://x" + path,
            "status": status, "content_type": content_type,
            "headers": headers or {}, "body": body, "truncated": False}


def test_check_finds_every_kind_of_mismatch():
    """The check itself can fail: each kind of drift is reported."""
    spec = contract.load_spec()
    ok = sample("get", "/player/me/wallet", 200,
                '{"player_id":"9ac51ac6-9907-40c6-8ad9-3cc116160fa2",'
                '"soft":5,"hard":0}')
    bad = {
        "a field of the wrong type": sample(
            "get", "/player/me/wallet", 200,
            '{"player_id":"9ac51ac6-9907-40c6-8ad9-3cc116160fa2",'
            '"soft":"5","hard":0}'),
        "a field the spec does not name": sample(
            "get", "/player/me/wallet", 200,
            '{"player_id":"9ac51ac6-9907-40c6-8ad9-3cc116160fa2",'
            '"soft":5,"hard":0,"gems":1}'),
        "a field the spec does not name, deeper": sample(
            "get", "/store/catalog", 200,
            '{"items":[{"item_id":"a","name":"A","kind":"hat",'
            '"stackable":false,"max_stack":1,"prices":{"soft":1},'
            '"secret_cost":0}]}'),
        "an id that is no uuid": sample(
            "get", "/player/me/wallet", 200,
            '{"player_id":"42","soft":5,"hard":0}'),
        "an error code not listed": sample(
            "get", "/player/me/wallet", 401,
            '{"error":{"code":"no_such_code","message":"m"}}'),
        "an error outside the uniform shape": sample(
            "get", "/player/me/wallet", 401, '{"message":"unauthorized"}'),
        "not JSON": sample(
            "get", "/player/me/wallet", 401, "<html>401</html>",
            content_type="text/html"),
        "a 503 without Retry-After": sample(
            "get", "/player/me/wallet", 503,
            '{"error":{"code":"unavailable","message":"m"}}'),
        "a Retry-After that is no number of seconds": sample(
            "get", "/player/me/wallet", 503,
            '{"error":{"code":"unavailable","message":"m"}}',
            headers={"retry-after": "soon"}),
        "a 401 without WWW-Authenticate": sample(
            "get", "/player/me/wallet", 401,
            '{"error":{"code":"invalid_token","message":"m"}}'),
        "a 405 that is not an error": sample(
            "put", "/player/me/wallet", 405, '{"ok":true}'),
        "another method answered with 200": sample(
            "put", "/player/me/wallet", 200, '{}'),
    }
    good_time = sample(
        "get", "/player/x/achievements", 200,
        '{"player_id":"9ac51ac6-9907-40c6-8ad9-3cc116160fa2","achievements":'
        '[{"achievement_id":"a","name":"A","description":"d",'
        '"unlocked_at":"2026-11-29T18:32:52.762785+00:00"}]}')
    bad["a time that is no RFC 3339 date-time"] = dict(
        good_time, body=good_time["body"].replace(
            "2026-11-29T18:32:52.762785+00:00", "2026-11-29 18:32"))
    assert contract.check_sample(spec, "get", "/player/me/wallet", ok) == []
    assert contract.check_sample(
        spec, "get", "/player/{playerId}/achievements", good_time) == []
    for what, s in bad.items():
        t = contract.Recorder(spec, []).template(s["path"])
        got = contract.check_sample(spec, s["method"], t, s)
        assert got, "not reported: " + what

    counts = {("get", "/player/me/wallet", 200): 1,
              ("get", "/player/me/wallet", 418): 1}
    problems, _ = contract.check(
        spec, counts, {("get", "/player/me/wallet", 200): [ok]})
    text = "\n".join(problems)
    assert "status 418" in text
    assert "GET /store/catalog: never answered" in text
    assert "GET /player/me/wallet: never" not in text


def test_recorder_keeps_only_the_stack_and_a_bounded_sample():
    spec = contract.load_spec()
    rec = contract.Recorder(spec, ["http://127.0.0.1:1"])

    class Req:
        method = "GET"

        def __init__(self, url):
            self.url = url

    class Resp:
        status_code = 200
        headers = {"Content-Type": "application/json"}
        _content_consumed = True
        content = b'{"status":"ok"}'

    for _ in range(1000):
        rec.record(Req("http://127.0.0.1:1/healthz"), Resp())
    rec.record(Req("http://127.0.0.1:2/healthz"), Resp())
    rec.record(Req("http://127.0.0.1:1/player/me"), Resp())
    rec.record(Req("http://127.0.0.1:1/player/abc/profile?x=1"), Resp())
    assert rec.counts[("get", "/healthz", 200)] == 1000
    # the first 25, then the 32nd, 64th ... 512th
    assert len(rec.samples[("get", "/healthz", 200)]) == 25 + 5
    # the literal path wins over the template, the query is not the path
    assert ("get", "/player/me", 200) in rec.counts
    assert ("get", "/player/{playerId}/profile", 200) in rec.counts


# the operators' pages and Prometheus' scrape: served by nginx itself
# (auth_basic, allow/deny), not by a JSON endpoint
OPERATORS = ("/metrics", "/admin/", "/admin/metrics")


def credential(stack, path, player):
    """The Authorization a request to path needs: an admin's secret of the
    service that owns an admin path, a player's token elsewhere."""
    name = None
    if path.startswith("/admin/leaderboards/"):
        name = "lb-admin.key"
    elif path == "/admin/notify":
        name = "rt-admin.key"
    elif path.startswith("/admin/telemetry/"):
        name = "tel-admin.key"
    elif path.startswith("/admin/"):
        name = "econ-admin.key"
    if name is None:
        return player
    with open(os.path.join(stack.var, "keys", name)) as f:
        return "Bearer " + f.read().strip()


def test_methods_not_listed_answer_405(stack):
    """A method a path does not list is refused with 405 in the uniform
    error shape, with a player's token or an admin's secret (so that the
    guards let it through to the handler), on every path of the spec."""
    r = requests.post(stack.url("/auth/device"), timeout=10,
                      json={"device_id": "contract-" + uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    player = "Bearer " + r.json()["access_token"]

    spec = contract.load_spec()
    wrong = []
    for template, item in spec["paths"].items():
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
        if template in OPERATORS:
            continue    # nginx's static files and metrics, no JSON API
        auth = credential(stack, path, player)
        for method in ("PUT", "DELETE", "PATCH", "GET", "POST"):
            if method.lower() in item:
                continue
            r = requests.request(method, stack.url(path), timeout=10,
                                 headers={"Authorization": auth})
            try:
                code = r.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = None
            if r.status_code != 405 or code != "method_not_allowed":
                wrong.append("%s %s -> %d %.120s"
                             % (method, path, r.status_code, r.text))
    assert not wrong, "\n".join(wrong)


def test_every_json_body_is_refused_alike(stack):
    """Every operation that takes a JSON body refuses another media type
    with 415 and a body that is not an object with 400 invalid_json (an
    unsigned webhook event is refused first), in the uniform error shape; the
    answers are checked against each operation's schemas with the rest."""
    r = requests.post(stack.url("/auth/device"), timeout=10,
                      json={"device_id": "contract-" + uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    player = "Bearer " + r.json()["access_token"]

    spec = contract.load_spec()
    wrong = []
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if "requestBody" not in op:
                continue
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
            auth = credential(stack, path, player)
            cases = (("text/plain", "{}", 415, "unsupported_media_type"),
                     ("application/json", "[]", 400, "invalid_json"))
            if path == "/payments/webhook":
                # an unsigned event is refused before anything else
                cases = tuple((t, b, 400, "invalid_signature")
                              for t, b, _, _ in cases)
            for ctype, body, status, code in cases:
                r = requests.request(
                    method.upper(), stack.url(path), data=body, timeout=10,
                    headers={"Authorization": auth, "Content-Type": ctype,
                             "Idempotency-Key": uuid.uuid4().hex})
                try:
                    got = r.json()["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    got = None
                if (r.status_code, got) != (status, code):
                    wrong.append("%s %s (%s %s) -> %d %.120s"
                                 % (method.upper(), path, ctype, body,
                                    r.status_code, r.text))
    assert not wrong, "\n".join(wrong)


def test_websocket_handshake_is_answered_101(stack):
    """The realtime tests open their sockets with WebSocket clients, which
    the recorder does not see; the handshake's success is recorded here."""
    r = requests.post(stack.url("/auth/device"), timeout=10,
                      json={"device_id": "contract-" + uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    with requests.Session() as session:
        r = session.get(stack.url("/ws"), timeout=10, headers={
            "Authorization": "Bearer " + r.json()["access_token"],
            "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Protocol": "game.v1"})
        assert r.status_code == 101, r.text
        assert r.headers["Sec-WebSocket-Protocol"] == "game.v1"
        r.close()


def test_scrape_and_operator_page_are_answered(stack):
    """Prometheus scrapes /metrics and a browser loads the operator page,
    each with a client of its own; one of each is recorded here."""
    r = requests.get(stack.url("/metrics"), timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    with open(os.path.join(stack.var, "keys", "admin.password")) as f:
        operator = ("admin", f.read().strip())
    r = requests.get(stack.url("/admin/"), auth=operator, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")


def test_real_answers_match_the_contract(request):
    """Every answer the suite got from the stack: its status documented
    for its operation, its body valid against the schema (a sample), and,
    when the whole suite ran, every operation answered with a success."""
    rec = contract.RECORDER
    assert rec is not None and not rec.errors, rec and rec.errors
    whole = getattr(request.config, "_contract_whole_suite", False)
    with rec.lock:
        counts = dict(rec.counts)
        samples = copy.deepcopy(rec.samples)
    problems, summary = contract.check(rec.spec, counts, samples,
                                       require_all=whole)
    print(summary)
    assert not problems, "%d contract problems (%s):\n%s" % (
        len(problems), summary, "\n".join(problems[:60]))
