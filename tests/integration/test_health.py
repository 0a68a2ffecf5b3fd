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
    # tel_copy: telemetry's writer loads by COPY on a pool of its own
    assert r.json() == {"status": "ready",
                        "checks": {"postgres:main": "ok",
                                   "postgres:tel_copy": "ok",
                                   "redis:main": "ok"}}


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


def test_clients_leaving_mid_request_do_not_disturb_the_pools(stack):
    """Requests abandoned while their query is in flight: the results still
    arrive on the pipelined connections and must be dropped, not handed to
    the next request."""
    import socket

    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", stack.http_port))
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        s.close()

    from concurrent.futures import ThreadPoolExecutor

    def get(_):
        r = requests.get(stack.url("/readyz"), timeout=10)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=16) as ex:
        results = list(ex.map(get, range(200)))
    assert all(code == 200 for code, _ in results)
    assert all(body["checks"] == {"postgres:main": "ok",
                                  "postgres:tel_copy": "ok",
                                  "redis:main": "ok"}
               for _, body in results)
