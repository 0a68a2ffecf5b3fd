"""What the pools write to the log when PostgreSQL refuses a statement.

PostgreSQL's DETAIL quotes the values ("Key (lower(username))=(alice)
already exists"): it never reaches the log.  An error the query expects
(a taken username, which the client gets as 409) is logged at info at
most, with its SQLSTATE and constraint only.
"""

import os
import re
import time
import uuid

import requests


def log_since(stack, start):
    path = os.path.join(stack.var, "log", "nginx-error.log")
    with open(path, "rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")


def log_size(stack):
    return os.path.getsize(os.path.join(stack.var, "log", "nginx-error.log"))


def register(stack, username, email):
    return requests.post(stack.url("/auth/register"), timeout=10, json={
        "username": username, "email": email,
        "password": "correct horse battery staple"})


def test_a_taken_username_is_logged_at_info_without_the_name(stack):
    name = "u" + uuid.uuid4().hex[:12]
    r = register(stack, name, "%s@example.com" % name)
    assert r.status_code == 201, r.text

    start = log_size(stack)
    r = register(stack, name.upper(), "other-%s@example.com" % name)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "username_taken"
    time.sleep(0.3)
    new = log_since(stack, start)

    assert name not in new.lower(), new
    assert "DETAIL" not in new, new
    for line in new.splitlines():
        assert not re.search(r"\[(warn|error|crit|alert|emerg)\]", line), line
    assert "expected error 23505" in new, new
