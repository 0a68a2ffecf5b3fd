"""Request bodies: media type, size limits and malformed JSON.

/test/echo parses a body exactly as every service endpoint does and sends it
back; /test/echo-small has game_body_limit 16.
"""

import json
import os
import socket
import uuid

import requests

JSON = {"Content-Type": "application/json"}


def post(stack, path, data, headers=JSON):
    return requests.post(stack.url(path), data=data, headers=headers, timeout=5)


def assert_error(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]["message"]


def test_valid_json_round_trips(stack):
    doc = {"name": "zoë", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    r = post(stack, "/test/echo", json.dumps(doc).encode())
    assert r.status_code == 200
    assert r.json() == {"received": doc}


def test_charset_parameter_is_accepted(stack):
    r = post(stack, "/test/echo", b'{"a":1}',
             {"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_missing_or_wrong_content_type_is_415(stack):
    assert_error(post(stack, "/test/echo", b'{"a":1}', {}), 415,
                 "unsupported_media_type")
    assert_error(post(stack, "/test/echo", b'{"a":1}',
                      {"Content-Type": "text/plain"}), 415,
                 "unsupported_media_type")
    assert_error(post(stack, "/test/echo", b'{"a":1}',
                      {"Content-Type": "application/jsonp"}), 415,
                 "unsupported_media_type")


def test_malformed_json_is_400_saying_where(stack):
    msg = assert_error(post(stack, "/test/echo", b'{\n "a": 1,\n "b" 2\n}'),
                       400, "invalid_json")
    assert "line 3" in msg and "column" in msg


def test_non_object_and_empty_bodies_are_400(stack):
    assert_error(post(stack, "/test/echo", b"[1,2]"), 400, "invalid_json")
    assert_error(post(stack, "/test/echo", b'"text"'), 400, "invalid_json")
    assert_error(post(stack, "/test/echo", b""), 400, "invalid_json")


def test_duplicate_keys_are_refused(stack):
    assert_error(post(stack, "/test/echo", b'{"a":1,"a":2}'), 400,
                 "invalid_json")


def test_body_over_limit_is_413_by_length(stack):
    big = json.dumps({"a": "x" * 70000}).encode()
    assert_error(post(stack, "/test/echo", big), 413, "payload_too_large")
    assert_error(post(stack, "/test/echo-small", b'{"a":"0123456789abc"}'),
                 413, "payload_too_large")


def test_chunked_body_over_limit_is_413(stack):
    def chunks():
        yield b'{"a":"'
        for _ in range(80):
            yield b"x" * 1000
        yield b'"}'
    r = requests.post(stack.url("/test/echo"), data=chunks(), headers=JSON,
                      timeout=5)
    assert_error(r, 413, "payload_too_large")


def temp_file_lines(stack, marker):
    """Lines where nginx says it wrote a request body to a temporary file,
    for the requests whose URI carries "marker"."""
    path = os.path.join(stack.var, "log", "nginx-error.log")
    with open(path, errors="replace") as f:
        return [line for line in f
                if "buffered to a temporary file" in line and marker in line]


def test_body_over_the_buffer_stays_in_memory(stack):
    """Over client_body_buffer_size (16k in test.conf), under
    game_body_limit (64k): read whole, and never written to a temporary
    file (whose reading back would block the worker)."""
    marker = "memory-%s" % uuid.uuid4().hex
    doc = {"a": "y" * 40000}
    r = post(stack, "/test/echo?" + marker, json.dumps(doc).encode())
    assert r.status_code == 200
    assert r.json() == {"received": doc}
    assert temp_file_lines(stack, marker) == []


def test_chunked_body_over_the_buffer_stays_in_memory(stack):
    marker = "memory-chunked-%s" % uuid.uuid4().hex
    doc = {"a": "z" * 50000}
    text = json.dumps(doc).encode()

    def chunks():
        for i in range(0, len(text), 7000):
            yield text[i:i + 7000]
    r = requests.post(stack.url("/test/echo?" + marker), data=chunks(),
                      headers=JSON, timeout=5)
    assert r.status_code == 200
    assert r.json() == {"received": doc}
    assert temp_file_lines(stack, marker) == []


def test_echo_refuses_get(stack):
    assert_error(requests.get(stack.url("/test/echo"), timeout=5), 405,
                 "method_not_allowed")


def test_connection_stays_usable_after_an_error(stack):
    """An error answer must not leave the unread body in the socket."""
    s = socket.create_connection(("127.0.0.1", stack.http_port), timeout=5)
    body = b'{"a":1}'
    req = (b"POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    ok = (b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    s.sendall(req + ok)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 415")
    assert b"HTTP/1.1 200" in data
    assert b'{"status":"ok"}' in data


def test_http2_bodies_stay_in_memory_and_are_bounded(stack, tmp_path):
    """The TLS listener speaks HTTP/2 (as the production edge does): its
    request bodies take the same path, framed by the stream."""
    import subprocess

    marker = "memory-h2-%s" % uuid.uuid4().hex
    doc = {"a": "w" * 40000}
    small = tmp_path / "small.json"
    big = tmp_path / "big.json"
    small.write_text(json.dumps(doc))
    big.write_text(json.dumps({"a": "w" * 70000}))
    cert = os.path.join(stack.var, "tls", "dev.crt")

    def h2(path, body):
        r = subprocess.run(
            ["curl", "-s", "--http2", "--cacert", cert, "--max-time", "10",
             "-H", "Content-Type: application/json",
             "--data-binary", "@%s" % body, "-o", "-",
             "-w", "\n%{http_version} %{http_code}",
             stack.https_url + path], capture_output=True, text=True)
        text, status = r.stdout.rsplit("\n", 1)
        return status, text

    status, text = h2("/test/echo?" + marker, small)
    assert status == "2 200", (status, text)
    assert json.loads(text) == {"received": doc}
    assert temp_file_lines(stack, marker) == []

    status, text = h2("/test/echo", big)
    assert status == "2 413", (status, text)
    assert json.loads(text)["error"]["code"] == "payload_too_large"
