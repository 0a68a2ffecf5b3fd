"""The API contract, checked against what the stack really answers.

docs/openapi.yaml describes every endpoint.  While the integration tests
run, a recorder wrapped around requests' Session.send notes every answer
that comes from the test stack's own nginx (its base URLs; game servers,
second nginx instances and raw sockets are not recorded): method, path,
status, content type and, for a bounded sample, the body.
test_zz_contract.py then checks the sample against the operation's
response schema, and checks that no operation went untested and that no
answer had a status its operation does not document.

The recorder is kept light because the suite makes tens of thousands of
requests, some of them timed: it matches the path against the spec's
templates (a few regular expressions), counts every answer, and keeps the
body of the first answers of each (operation, status) and then of the
2nd, 4th, 8th... so that late answers (after outages, reloads) are seen
too, with a bound on memory.
"""

import os
import re
import threading
import urllib.parse

import requests
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# bodies kept per (method, template, status): the first FIRST of them, then
# those whose count is a power of two
FIRST = 25
MAX_BODY = 256 * 1024


def load_spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def template_regex(template):
    """'/player/{playerId}/profile' -> a regex matching one segment for
    each parameter."""
    parts = re.split(r"(\{[^}/]+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") else re.escape(p)
                 for p in parts)
    return re.compile("^" + rx + "$")


class Recorder:
    def __init__(self, spec, base_urls):
        self.spec = spec
        self.bases = [b.rstrip("/") for b in base_urls]
        # literal templates win over templated ones (/player/me before
        # /player/{id}), as nginx's exact locations win over regexes
        templates = sorted(spec.get("paths", {}),
                           key=lambda t: (t.count("{"), -len(t)))
        self.templates = [(t, template_regex(t)) for t in templates]
        self.lock = threading.Lock()
        self.counts = {}      # (method, template, status) -> n
        self.samples = {}     # (method, template, status) -> [sample]
        self.unmatched = {}   # (method, path, status) -> n (no template)
        self.errors = []      # exceptions of the recorder itself

    def template(self, path):
        for t, rx in self.templates:
            if rx.match(path):
                return t
        return None

    def record(self, request, response):
        url = request.url
        base = next((b for b in self.bases if url.startswith(b + "/")), None)
        if base is None:
            return
        path = urllib.parse.urlsplit(url).path
        method = request.method.lower()
        status = response.status_code
        t = self.template(path)
        if t is None:
            with self.lock:
                k = (method, path, status)
                self.unmatched[k] = self.unmatched.get(k, 0) + 1
            return
        key = (method, t, status)
        with self.lock:
            n = self.counts.get(key, 0) + 1
            self.counts[key] = n
            keep = n <= FIRST or (n & (n - 1)) == 0
        if not keep:
            return
        if not response._content_consumed:
            return  # a streamed answer the test reads itself: not touched
        body = response.content or b""
        sample = {
            "method": method, "path": path, "url": url, "status": status,
            "content_type": response.headers.get("Content-Type", ""),
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": body[:MAX_BODY], "truncated": len(body) > MAX_BODY,
        }
        with self.lock:
            self.samples.setdefault(key, []).append(sample)


RECORDER = None


def install(base_urls):
    """Wrap requests.Session.send once; every requests call goes through
    it (requests.get and friends make a Session too)."""
    global RECORDER
    if RECORDER is not None:
        return RECORDER
    RECORDER = Recorder(load_spec(), base_urls)
    send = requests.Session.send

    def recording_send(self, request, **kwargs):
        response = send(self, request, **kwargs)
        try:
            RECORDER.record(request, response)
        except Exception as e:  # never break a test; the check reports it
            RECORDER.errors.append(repr(e))
        return response

    requests.Session.send = recording_send
    return RECORDER


def dump(path):
    """Write what was recorded as JSON lines (GAME_TEST_CONTRACT_DUMP), to
    look at answers or check the spec again without running the suite
    (python3 tests/integration/contract.py FILE)."""
    import json
    with open(path, "w") as f:
        for (m, t, st), n in sorted(RECORDER.counts.items()):
            f.write(json.dumps({"count": [m, t, st, n]}) + "\n")
        for (m, p, st), n in sorted(RECORDER.unmatched.items()):
            f.write(json.dumps({"unmatched": [m, p, st, n]}) + "\n")
        for key, samples in sorted(RECORDER.samples.items()):
            for x in samples:
                x = dict(x, body=x["body"].decode("utf-8", "replace"))
                f.write(json.dumps({"sample": x}) + "\n")


# --- the check -----------------------------------------------------------

def _resolve(spec, node):
    """Follow a local $ref of the spec (a response, a header)."""
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _closed(node):
    """The schema with every object that lists its properties closed to
    others (additionalProperties: false), unless it says otherwise: the
    spec leaves objects open so that clients tolerate new fields, but the
    server must not send a field the spec does not name.  A schema that
    extends a $ref with siblings (the errors) stays as it is, and so does
    the Error schema, whose users add fields beside and inside it."""
    if isinstance(node, list):
        return [_closed(x) for x in node]
    if not isinstance(node, dict) or "$ref" in node:
        return node
    out = {k: _closed(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out \
            and "patternProperties" not in out:
        out["additionalProperties"] = False
    return out


_components = {}


def _validator(spec, schema):
    """A 2020-12 validator of one schema of the spec, closed (_closed).
    The schema is put in a document that also holds the spec's components,
    so that its '#/components/...' references resolve without a resolver
    object (whose API differs between jsonschema versions)."""
    import jsonschema
    key = id(spec)
    if key not in _components:
        components = dict(spec.get("components", {}))
        schemas = dict(components.get("schemas", {}))
        for name, sch in schemas.items():
            if name != "Error":
                schemas[name] = _closed(sch)
        components["schemas"] = schemas
        _components[key] = (spec, components)
    root = {"components": _components[key][1], "allOf": [_closed(schema)]}
    return jsonschema.Draft202012Validator(root, format_checker=_formats())


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?"
                     r"([Zz]|[+-]\d\d:\d\d)$")


def _formats():
    """The format checks of jsonschema, with "date-time" (RFC 3339), which
    Debian's jsonschema checks only with a package Debian does not have."""
    import datetime
    import jsonschema
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def date_time(value):
        if not isinstance(value, str):
            return True
        if not RFC3339.match(value):
            return False
        datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return True

    return checker


def operations(spec):
    """(method, template) of every operation the spec describes."""
    return [(m, t) for t, item in spec["paths"].items()
            for m in item if m in METHODS]


def _json_api(spec, item):
    """Whether a path answers JSON (not a page or a text served by nginx)."""
    return any("application/json" in _resolve(spec, r).get("content", {})
               for m, op in item.items() if m in METHODS
               for r in op.get("responses", {}).values())


def check_sample(spec, method, template, s):
    """What is wrong with one recorded answer, as a list of strings."""
    where = "%s %s -> %d" % (method.upper(), s["path"], s["status"])
    item = spec["paths"][template]
    if s["truncated"]:
        return []
    if method not in item:
        if method in ("head", "options") or not _json_api(spec, item):
            return []   # nginx's own pages answer other methods their way
        # a method the path does not list: 405 in the uniform error shape,
        # or 401 when the credential is checked first (admin endpoints)
        codes = {405: ["method_not_allowed"],
                 401: ["unauthorized", "invalid_token"]}.get(s["status"])
        if codes is None:
            return ["%s: %s is not an operation of %s, yet not 405"
                    % (where, method.upper(), template)]
        schema = {"$ref": "#/components/schemas/Error",
                  "properties": {"error": {"properties": {
                      "code": {"enum": codes}}}}}
        return _check_body(spec, where, schema, s)
    op = item[method]
    response = op.get("responses", {}).get(str(s["status"]))
    if response is None:
        return ["%s: status %d is not documented for %s %s"
                % (where, s["status"], method.upper(), template)]
    response = _resolve(spec, response)
    problems = []
    headers = s.get("headers", {})
    for name, header in response.get("headers", {}).items():
        header = _resolve(spec, header)
        value = headers.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append("%s: no %s header" % (where, name))
            continue
        schema = header.get("schema", {})
        if schema.get("type") == "integer":
            value = int(value) if value.isdigit() else value
        for e in _validator(spec, schema).iter_errors(value):
            problems.append("%s: header %s: %s" % (where, name, e.message))
    content = response.get("content")
    if not content:
        return problems
    ctype = s["content_type"].split(";")[0].strip().lower()
    if ctype not in content:
        return problems + ["%s: Content-Type %r, not one of %s"
                           % (where, s["content_type"], sorted(content))]
    schema = content[ctype].get("schema")
    if ctype != "application/json" or schema is None:
        return problems
    return problems + _check_body(spec, where, schema, s)


def _check_body(spec, where, schema, s):
    import json
    ctype = s["content_type"].split(";")[0].strip().lower()
    if ctype != "application/json":
        return ["%s: Content-Type %r, not application/json"
                % (where, s["content_type"])]
    body = s["body"]
    try:
        doc = json.loads(body)
    except ValueError as e:
        return ["%s: not JSON (%s): %.200r" % (where, e, body)]
    errors = sorted(_validator(spec, schema).iter_errors(doc),
                    key=lambda e: list(e.absolute_path))
    return ["%s: %s at /%s (body %.300s)"
            % (where, e.message[:300],
               "/".join(str(p) for p in e.absolute_path),
               body if isinstance(body, str) else body.decode("utf-8", "replace"))
            for e in errors[:3]]


def check(spec, counts, samples, require_all=True):
    """Every problem of the recorded answers: bodies that do not match
    their schemas, statuses an operation does not document, operations
    never answered with a success (when require_all).  Returns (problems,
    summary)."""
    problems = []
    checked = 0
    for (method, template, status), n in sorted(counts.items()):
        item = spec["paths"].get(template, {})
        if method in item and str(status) not in item[method].get(
                "responses", {}):
            problems.append("%s %s: status %d (%d answers) is not documented"
                            % (method.upper(), template, status, n))
    for (method, template, status), ss in sorted(samples.items()):
        for s in ss:
            checked += 1
            for p in check_sample(spec, method, template, s):
                if "is not documented" not in p:
                    problems.append(p)
    if require_all:
        # a success: 2xx, or 101 for the WebSocket handshake
        ok = {(m, t) for (m, t, st) in counts if 100 <= st < 300}
        for m, t in operations(spec):
            if (m, t) not in ok:
                problems.append("%s %s: never answered with a success in "
                                "the tests" % (m.upper(), t))
    ops = {(m, t) for (m, t, st) in counts if m in spec["paths"][t]}
    summary = ("%d operations in the spec, %d answered; %d answers, %d bodies "
               "checked against their schemas"
               % (len(operations(spec)), len(ops), sum(counts.values()),
                  checked))
    return problems, summary


if __name__ == "__main__":
    # python3 tests/integration/contract.py DUMP: check the answers of an
    # earlier run (GAME_TEST_CONTRACT_DUMP=DUMP) against the spec as it is
    # now, without running the suite again
    import json
    import sys
    spec = load_spec()
    rec = Recorder(spec, [])
    counts, samples = {}, {}
    for line in open(sys.argv[1]):
        d = json.loads(line)
        if "count" in d:
            m, t, st, n = d["count"]
            counts[(m, t, st)] = counts.get((m, t, st), 0) + n
        elif "sample" in d:
            s = d["sample"]
            t = rec.template(s["path"])
            if t is not None:
                samples.setdefault((s["method"], t, s["status"]), []).append(s)
    problems, summary = check(spec, counts, samples)
    print("\n".join(problems))
    print(summary, "-", len(problems), "problems")
    sys.exit(1 if problems else 0)
