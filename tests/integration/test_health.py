"""Liveness, readiness and the JSON shape of answers nobody routed."""

import requests


def test_healthz_answers_ok(stack):
    r = requests.get(stack.url("/healthz"), timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"status": "ok"}


def test_readyz_checks_every_pool(stack):
    r = requests.get(stack.url("/readyz"), timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ready",
                        "checks": {"postgres:main": "ok", "redis:main": "ok"}}


def test_readyz_over_https(stack):
    cert = stack.var + "/tls/dev.crt"
    r = requests.get(stack.https_url + "/readyz", timeout=5, verify=cert)
    assert r.status_code == 200
    assert r.json()["status"] == "ready"


def test_health_refuses_other_methods_with_json(stack):
    r = requests.post(stack.url("/healthz"), timeout=5)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_unknown_path_is_a_json_404(stack):
    r = requests.get(stack.url("/no/such/thing"), timeout=5)
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found",
                                  "message": "no such endpoint"}}


def test_many_readyz_in_flight_all_answer(stack):
    """More concurrent checks than pool connections: they queue, not fail."""
    from concurrent.futures import ThreadPoolExecutor

    def get(_):
        return requests.get(stack.url("/readyz"), timeout=10).status_code

    with ThreadPoolExecutor(max_workers=32) as ex:
        codes = list(ex.map(get, range(400)))
    assert codes.count(200) == 400
