"""What a hostile or careless client does at the edge: request smuggling
through an early error, status lines.

Every test speaks HTTP/1.1 on a raw socket so that it sees exactly what
nginx wrote: how many answers, their status lines, Connection headers.

The smuggling tests send one request whose body carries the bytes of a
second request.  An answer sent before the body was read must leave the
connection safe: the body is read and dropped (the next request on the
connection is the one the client meant), or the connection is closed.
Never is the body parsed as a request of its own.
"""

import json
import re
import socket
import time

SMUGGLED = (b"GET /healthz?smuggled=1 HTTP/1.1\r\nHost: t\r\n"
            b"Connection: close\r\n\r\n")

# the request a well-behaved client sends next: a JSON 404, so that it
# cannot be mistaken for an answer to SMUGGLED
NEXT = b"GET /no/such/thing?next=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def exchange(stack, data, shut_write=False, timeout=10):
    """Send raw bytes on a fresh connection and read until nginx closes it
    (or the bounded wait ends).  "shut_write" says that the client has
    nothing more to send, so that a server still reading a body sees the
    end of it."""
    s = socket.create_connection(("127.0.0.1", stack.http_port),
                                 timeout=timeout)
    try:
        s.sendall(data)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                raise AssertionError("nginx kept the connection open; "
                                     "read so far: %r" % out)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def responses(data):
    """Split a byte stream into (status line, headers, body) answers."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, "truncated answer: %r" % data
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((lines[0], headers, rest[:n]))
        data = rest[n:]
    return out


def post(path, headers, body=b""):
    h = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                 for k, v in headers.items())
    return b"POST %s HTTP/1.1\r\nHost: t\r\n%s\r\n%s" % (path.encode(), h,
                                                         body)


def assert_json_error(answer, status, code):
    line, headers, body = answer
    assert line.startswith("HTTP/1.1 %d " % status), answer
    assert headers["content-type"] == "application/json", answer
    assert json.loads(body)["error"]["code"] == code, answer


def assert_not_smuggled(raw):
    assert b"smuggled" not in raw
    # /healthz would answer {"status":"ok"}: nothing of the sort came back
    assert b'"status":"ok"' not in raw, raw


JSON_CHUNKED = {"Content-Type": "application/json",
                "Transfer-Encoding": "chunked"}


def test_chunk_over_the_body_limit_closes_the_connection(stack):
    """The issue's case: a chunk size over client_max_body_size (1m in
    test.conf) is refused as soon as nginx reads the size line; the rest
    of the body, the smuggled request, is never read."""
    raw = exchange(stack, post("/auth/login", JSON_CHUNKED,
                               b"100001\r\n" + SMUGGLED))
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 1, answers
    assert_json_error(answers[0], 413, "payload_too_large")
    assert answers[0][1]["connection"] == "close"


def test_chunk_over_the_limit_in_a_later_packet_closes_too(stack):
    """The same, when the size line arrives after nginx started reading
    the body (nginx answers with its own 413 then): still one answer."""
    s = socket.create_connection(("127.0.0.1", stack.http_port), timeout=10)
    try:
        s.sendall(post("/auth/login", JSON_CHUNKED))
        time.sleep(0.3)
        s.sendall(b"100001\r\n" + SMUGGLED)
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        s.close()
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 1, answers
    assert_json_error(answers[0], 413, "payload_too_large")
    assert answers[0][1]["connection"] == "close"


def test_chunked_body_over_game_body_limit_is_read_and_dropped(stack):
    """A chunked body within client_max_body_size but over game_body_limit
    (64k) is read to its end without being kept: the smuggled bytes are
    body bytes, and the client's next request is answered."""
    size = 0x20000
    chunk = SMUGGLED + b"x" * (size - len(SMUGGLED))
    body = b"20000\r\n" + chunk + b"\r\n0\r\n\r\n"
    raw = exchange(stack, post("/auth/login", JSON_CHUNKED, body) + NEXT,
                   shut_write=True)
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert_json_error(answers[0], 413, "payload_too_large")
    # the 413 may close the connection; if it did not, the next request
    # is the client's own
    assert len(answers) <= 2, answers
    if len(answers) == 2:
        assert_json_error(answers[1], 404, "not_found")


def test_content_length_over_the_limit_closes_the_connection(stack):
    raw = exchange(stack, post("/auth/login",
                               {"Content-Type": "application/json",
                                "Content-Length": "100001"}, SMUGGLED),
                   shut_write=True)
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 1, answers
    assert_json_error(answers[0], 413, "payload_too_large")
    assert answers[0][1]["connection"] == "close"


def test_malformed_chunk_closes_the_connection(stack):
    raw = exchange(stack, post("/auth/login", JSON_CHUNKED,
                               b"zz\r\n" + SMUGGLED))
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 1, answers
    assert_json_error(answers[0], 400, "invalid_body")
    assert answers[0][1]["connection"] == "close"


def test_wrong_content_type_discards_the_chunked_body(stack):
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    raw = exchange(stack, post("/auth/login",
                               {"Content-Type": "text/plain",
                                "Transfer-Encoding": "chunked"}, body) + NEXT)
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 2, answers
    assert_json_error(answers[0], 415, "unsupported_media_type")
    assert_json_error(answers[1], 404, "not_found")


def test_wrong_content_type_with_a_huge_chunk_never_answers_the_rest(stack):
    raw = exchange(stack, post("/auth/login",
                               {"Content-Type": "text/plain",
                                "Transfer-Encoding": "chunked"},
                               b"100001\r\n" + SMUGGLED), shut_write=True)
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 1, answers
    assert_json_error(answers[0], 415, "unsupported_media_type")


def test_method_not_allowed_discards_the_body(stack):
    raw = exchange(stack, post("/healthz",
                               {"Content-Type": "application/json",
                                "Content-Length": str(len(SMUGGLED))},
                               SMUGGLED) + NEXT)
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 2, answers
    assert_json_error(answers[0], 405, "method_not_allowed")
    assert_json_error(answers[1], 404, "not_found")


def test_unauthorized_post_discards_the_body(stack):
    """/auth/link needs a bearer token; the 401 comes before the body."""
    raw = exchange(stack, post("/auth/link",
                               {"Content-Type": "application/json",
                                "Content-Length": str(len(SMUGGLED))},
                               SMUGGLED) + NEXT)
    assert_not_smuggled(raw)
    answers = responses(raw)
    assert len(answers) == 2, answers
    assert answers[0][0].startswith("HTTP/1.1 401 "), answers
    assert_json_error(answers[1], 404, "not_found")


def test_an_early_error_does_not_invite_the_body(stack):
    """With Expect: 100-continue, an answer decided before the body must
    not first say "100 Continue": the client would send a body we drop."""
    raw = exchange(stack, post("/test/echo",
                               {"Content-Type": "text/plain",
                                "Content-Length": "7",
                                "Expect": "100-continue",
                                "Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 415 "), raw
    assert b"100 Continue" not in raw


def test_unprocessable_has_a_reason_phrase(stack):
    """nginx 1.22 knows no phrase for 422 and would send "422 "."""
    body = b'{"username":"x","email":"a@example.com","password":"abcdefghijkl"}'
    raw = exchange(stack, post("/auth/register",
                               {"Content-Type": "application/json",
                                "Content-Length": str(len(body)),
                                "Connection": "close"}, body))
    line = raw.split(b"\r\n", 1)[0]
    assert line == b"HTTP/1.1 422 Unprocessable Content", raw


def test_every_status_line_has_a_reason_phrase(stack):
    """The statuses our endpoints answer with, as nginx writes them."""
    cases = [
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
         b"HTTP/1.1 200 OK"),
        (b"GET /no/such HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
         b"HTTP/1.1 404 Not Found"),
        (b"POST /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
         b"Content-Length: 0\r\n\r\n", b"HTTP/1.1 405 Not Allowed"),
        (post("/test/echo", {"Content-Type": "text/plain",
                             "Content-Length": "0", "Connection": "close"}),
         b"HTTP/1.1 415 Unsupported Media Type"),
        (post("/test/echo", {"Content-Type": "application/json",
                             "Content-Length": "1", "Connection": "close"},
              b"["), b"HTTP/1.1 400 Bad Request"),
    ]
    for request, line in cases:
        raw = exchange(stack, request)
        assert raw.split(b"\r\n", 1)[0] == line, raw


def test_the_answers_nginx_makes_itself_are_json_errors(stack):
    """Before our handlers run (client_max_body_size, a malformed header,
    a URI over the header buffers, basic auth on the operator page) or
    when one fails with a bare status, nginx makes the answer: it is in
    the API's error shape all the same (conf/json-errors.*), with its
    status and the headers that go with it."""
    raw = exchange(stack, post("/auth/login",
                               {"Content-Type": "application/json",
                                "Content-Length": "999999999"}))
    assert_json_error(responses(raw)[0], 413, "payload_too_large")
    assert len(responses(raw)[0][1]["x-request-id"]) == 32

    raw = exchange(stack, b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
                          b"Bad Header\r\n\r\n")
    assert_json_error(responses(raw)[0], 400, "bad_request")

    raw = exchange(stack, b"HELLO\r\n\r\n")
    assert_json_error(responses(raw)[0], 400, "bad_request")

    raw = exchange(stack, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n"
                          b"Host: t\r\nConnection: close\r\n\r\n")
    assert_json_error(responses(raw)[0], 414, "uri_too_long")

    raw = exchange(stack, b"GET /admin/ HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n")
    answer = responses(raw)[0]
    assert_json_error(answer, 401, "unauthorized")
    assert answer[1]["www-authenticate"].startswith("Basic realm=")

    raw = exchange(stack, b"GET /test/nginx-500 HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n")
    assert_json_error(responses(raw)[0], 500, "internal_error")
    raw = exchange(stack, b"GET /.game-error HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n")
    assert_json_error(responses(raw)[0], 404, "not_found")

    raw = exchange(stack, b"GET /test/nginx-503 HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n")
    answer = responses(raw)[0]
    assert_json_error(answer, 503, "unavailable")
    assert answer[1]["retry-after"] == "1"
    # the request id too, which @game_unavailable's add_header must repeat
    assert re.match(r"^[0-9a-f]{32}$", answer[1]["x-request-id"]), answer
