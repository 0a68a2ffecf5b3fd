"""Faults inside libpq that no outage test reaches, injected at the seam.

A small shared library, preloaded into an nginx of this test's own,
interposes PQflush() and makes every Nth call from the core module fail,
as a write to a server that just went away does.  The session stack's
PostgreSQL serves it; only this nginx sees the faults.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.environ.get("GAME_MODULES", os.path.join(ROOT, "build", "modules"))

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

/* read in the master, before the workers fork (nginx clears their
 * environment) */
static unsigned long  every;
static unsigned long  calls;

__attribute__((constructor)) static void
shim_init(void)
{
    const char  *s = getenv("GAME_FAULT_PQFLUSH_EVERY");

    every = s ? strtoul(s, NULL, 10) : 0;
}

int
PQflush(PGconn *conn)
{
    static int  (*real)(PGconn *);
    Dl_info      info;

    if (real == NULL) {
        real = (int (*)(PGconn *)) dlsym(RTLD_NEXT, "PQflush");
    }

    /* only the core module's own calls: libpq flushes internally too */
    if (every
        && dladdr(__builtin_return_address(0), &info)
        && info.dli_fname
        && strstr(info.dli_fname, "ngx_game_core_module")
        && ++calls % every == 0)
    {
        return -1;
    }

    return real(conn);
}
"""


def build_shim(d):
    src = os.path.join(d, "shim.c")
    lib = os.path.join(d, "shim.so")
    with open(src, "w") as f:
        f.write(SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I/usr/include/postgresql",
                    "-o", lib, src, "-ldl"], check=True)
    return lib


def faulty_nginx(stack, d, every):
    port = stack.http_port + 7
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""
load_module %(modules)s/ngx_game_core_module.so;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    game_pg_pool main "host=127.0.0.1 port=%(pg)d dbname=game user=game"
                 connections=2 pipeline=8 query_timeout=2s;
    server {
        listen 127.0.0.1:%(port)d;
        location = /readyz { game_ready; }
    }
}
""" % {"modules": MODULES, "d": d, "pg": stack.pg_port, "port": port})
    env = dict(os.environ, LD_PRELOAD=build_shim(d),
               GAME_FAULT_PQFLUSH_EVERY=str(every))
    subprocess.run(["nginx", "-p", d, "-c", conf, "-e", d + "/error.log"],
                   env=env, check=True)
    return port


def test_a_flush_failure_after_the_query_entered_the_pipeline(stack):
    """The query is in flight when the flush fails: it must be completed
    exactly once (once it was completed by the connection's close and
    again by its caller, which finalized the request twice)."""
    d = tempfile.mkdtemp(prefix="game-fault.")
    port = faulty_nginx(stack, d, every=5)
    try:
        url = "http://127.0.0.1:%d/readyz" % port
        codes = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(codes) < 2:
            for _ in range(50):
                codes.add(requests.get(url, timeout=5).status_code)
        # both outcomes were seen: answers, and failed flushes
        assert codes == {200, 503}, codes
        time.sleep(0.5)
    finally:
        with open(os.path.join(d, "nginx.pid")) as f:
            master = int(f.read())
        os.kill(master, signal.SIGQUIT)
        for _ in range(100):
            try:
                os.kill(master, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    with open(os.path.join(d, "error.log"), errors="replace") as f:
        log = f.read()
    shutil.rmtree(d, ignore_errors=True)
    bad = [line for line in log.splitlines()
           if "[alert]" in line or "[crit]" in line or "[emerg]" in line
           or "exited on signal" in line]
    assert not bad, "\n".join(bad[:10])
