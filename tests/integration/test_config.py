"""Configuration errors surface at `nginx -t`, naming the directive."""

import os
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE = os.path.join(ROOT, "build", "modules", "ngx_game_core_module.so")


def nginx_t(http_body):
    d = tempfile.mkdtemp(prefix="game-conf.")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("load_module %s;\n"
                "pid %s/nginx.pid;\n"
                "error_log stderr;\n"
                "events {}\n"
                "http {\n%s\n}\n" % (MODULE, d, http_body))
    r = subprocess.run(["nginx", "-t", "-p", d, "-c", conf, "-e", "stderr"],
                       capture_output=True, text=True)
    return r.returncode, r.stderr


GOOD = ('game_pg_pool main "host=127.0.0.1 port=1 dbname=x" connections=2 '
        'query_timeout=2s;\n'
        'game_redis_pool main 127.0.0.1:6379 command_timeout=300ms;\n'
        'server { listen 127.0.0.1:1; location / { game_ready; } }')


def test_good_configuration_passes():
    rc, err = nginx_t(GOOD)
    assert rc == 0, err
    assert "syntax is ok" in err


@pytest.mark.parametrize("body, directive, word", [
    ('game_pg_pool main "dbname=x" connections=abc;', "game_pg_pool",
     "connections=abc"),
    ('game_pg_pool main "dbname=x" connections=0;', "game_pg_pool",
     "connections=0"),
    ('game_pg_pool main "dbname=x" query_timeout=soon;', "game_pg_pool",
     "query_timeout=soon"),
    ('game_pg_pool main "dbname=x" colour=blue;', "game_pg_pool",
     "colour=blue"),
    ('game_pg_pool main "host=x port=1 nosuchkey=1";', "game_pg_pool",
     "nosuchkey"),
    ('game_pg_pool main "dbname=x"; game_pg_pool main "dbname=y";',
     "game_pg_pool", "main"),
    ('game_redis_pool main localhost:6379;', "game_redis_pool",
     "localhost:6379"),
    ('game_redis_pool main 127.0.0.1:70000;', "game_redis_pool",
     "127.0.0.1:70000"),
    ('game_redis_pool main 127.0.0.1:6379 max_pending=-1;', "game_redis_pool",
     "max_pending=-1"),
    ('server { location / { game_body_limit lots; } }', "game_body_limit",
     "invalid value"),
    ('server { location / { game_retry_after 0; } }', "game_retry_after",
     ""),
    ('server { location / { game_ready on; } }', "game_ready", ""),
])
def test_bad_value_fails_naming_the_directive(body, directive, word):
    rc, err = nginx_t(body)
    assert rc != 0
    assert '"%s"' % directive in err, err
    assert word in err
    assert "test failed" in err
