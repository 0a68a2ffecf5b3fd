"""Configuration errors surface at `nginx -t`, naming the directive."""

import os
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.environ.get("GAME_MODULES", os.path.join(ROOT, "build", "modules"))
MODULE = os.path.join(MODULES, "ngx_game_core_module.so")


def nginx_t_text(text):
    """nginx -t on a configuration ("@D@" is its throwaway folder)."""
    with tempfile.TemporaryDirectory(prefix="game-conf.") as d:
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(text.replace("@D@", d))
        r = subprocess.run(["nginx", "-t", "-p", d, "-c", conf, "-e",
                            "stderr"], capture_output=True, text=True)
    return r


def nginx_t(http_body):
    r = nginx_t_text("load_module %s;\n"
                     "pid @D@/nginx.pid;\n"
                     "error_log stderr;\n"
                     "events {}\n"
                     "http {\n%s\n}\n" % (MODULE, http_body))
    return r.returncode, r.stderr


GOOD = ('game_pg_pool main "host=127.0.0.1 port=1 dbname=x" connections=2 '
        'query_timeout=2s;\n'
        'game_redis_pool main 127.0.0.1:6379 command_timeout=300ms;\n'
        'server { listen 127.0.0.1:1; location / { game_ready; } }')


def test_good_configuration_passes():
    rc, err = nginx_t(GOOD)
    assert rc == 0, err
    assert "syntax is ok" in err


@pytest.mark.parametrize("conninfo", [
    "host=10.0.0.1 port=5432 dbname=game",
    "host=::1 dbname=game",
    "host=/var/run/postgresql dbname=game",
    "dbname=game",
    "host=db.internal hostaddr=10.0.0.1 dbname=game",
    "host=10.0.0.1,10.0.0.2 port=5432,5433 dbname=game",
    "postgresql://game@10.0.0.1:5432/game",
])
def test_pool_addresses_that_need_no_name_lookup_pass(conninfo):
    rc, err = nginx_t('game_pg_pool main "%s";' % conninfo)
    assert rc == 0, err


@pytest.mark.parametrize("trace", ["trace=on", "trace=off"])
def test_pool_tracing_can_be_turned_off(trace):
    rc, err = nginx_t('game_pg_pool main "dbname=x application_name=eu-1" '
                      '%s;' % trace)
    assert rc == 0, err


@pytest.mark.parametrize("body, directive, word", [
    ('game_pg_pool main "dbname=x" connections=abc;', "game_pg_pool",
     "connections=abc"),
    ('game_pg_pool main "dbname=x" connections=0;', "game_pg_pool",
     "connections=0"),
    ('game_pg_pool main "dbname=x" query_timeout=soon;', "game_pg_pool",
     "query_timeout=soon"),
    ('game_pg_pool main "dbname=x" colour=blue;', "game_pg_pool",
     "colour=blue"),
    ('game_pg_pool main "dbname=x" trace=maybe;', "game_pg_pool",
     "trace=maybe"),
    ('game_pg_pool main "host=x port=1 nosuchkey=1";', "game_pg_pool",
     "nosuchkey"),
    ('game_pg_pool main "dbname=x"; game_pg_pool main "dbname=y";',
     "game_pg_pool", "main"),
    # libpq and hiredis resolve names with blocking calls
    ('game_pg_pool main "host=db.internal dbname=x";', "game_pg_pool",
     "db.internal"),
    ('game_pg_pool main "host=10.0.0.1,db2.internal dbname=x";',
     "game_pg_pool", "db2.internal"),
    ('game_pg_pool main "host=a.internal,b.internal hostaddr=10.0.0.1,";',
     "game_pg_pool", "b.internal"),
    ('game_pg_pool main "postgresql://game@db.internal/game";',
     "game_pg_pool", "db.internal"),
    ('game_pg_pool main "hostaddr=db.internal";', "game_pg_pool",
     "db.internal"),
    ('game_pg_pool main "service=game";', "game_pg_pool", "service"),
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


def test_a_pool_named_but_never_declared_fails():
    """Modules may look a pool up late (auth defaults to "main" in its own
    init_main_conf); the core still refuses a name nobody declared."""
    mm = MODULE.replace("ngx_game_core_module", "ngx_game_mm_module")
    body = ('game_redis_pool main 127.0.0.1:6379;\n'
            'game_pg_pool main "dbname=x";\n'
            'game_mm_redis nope;\n'
            'game_mm_pg main;\n'
            'game_mm_player $remote_user;\n'
            'game_mm_mode duel regions=local;\n'
            'server { listen 127.0.0.1:1; location / { game_mm_join; } }')
    r = nginx_t_text("load_module %s;\nload_module %s;\npid @D@/nginx.pid;\n"
                     "events {}\nhttp {\n%s\n}\n" % (MODULE, mm, body))
    assert r.returncode != 0
    assert 'Redis pool "nope"' in r.stderr
    assert "game_redis_pool" in r.stderr


@pytest.mark.parametrize("mode, word", [
    ("duel teams=0 regions=local", "teams=0"),
    ("duel teams=2", "regions="),
    ("duel regions=Local", "Local"),
    ("duel regions=local window=200 window_cap=100", "window"),
    ("duel regions=local widen_every=soon", "widen_every=soon"),
    ("duel regions=local colour=red", "colour=red"),
])
def test_bad_matchmaking_mode_fails_naming_the_directive(mode, word):
    mm = MODULE.replace("ngx_game_core_module", "ngx_game_mm_module")
    r = nginx_t_text("load_module %s;\nload_module %s;\npid @D@/nginx.pid;\n"
                     "events {}\nhttp {\ngame_mm_mode %s;\n}\n"
                     % (MODULE, mm, mode))
    assert r.returncode != 0
    assert '"game_mm_mode"' in r.stderr, r.stderr
    assert word in r.stderr, r.stderr


def stack_check(tmp, command, conf=None):
    env = dict(os.environ, GAME_VAR=str(tmp), GAME_MODULES=MODULES)
    if conf:
        env["GAME_CONF"] = os.path.join(ROOT, "conf", conf)
    return subprocess.run([os.path.join(ROOT, "scripts", "stack"), command],
                          env=env, capture_output=True, text=True)


@pytest.mark.parametrize("conf", ["dev.conf", "test.conf"])
def test_shipped_configuration_passes_nginx_t(conf, tmp_path):
    """Rendered as scripts/stack renders it, with the keys and certificate
    it makes for a fresh folder."""
    r = stack_check(tmp_path, "check", conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test is successful" in r.stderr


def test_production_edge_passes_nginx_t(tmp_path):
    """conf/production-edge.conf, its placeholders filled with throwaway
    secrets and a certificate (scripts/stack check-edge)."""
    r = stack_check(tmp_path, "check-edge")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test is successful" in r.stderr



RT = MODULE.replace("ngx_game_core_module", "ngx_game_rt_module")


@pytest.mark.parametrize("body, directive, word", [
    ("game_rt_origins play.example.com;", "game_rt_origins",
     "play.example.com"),
    ("game_rt_origins https://a.example/path;", "game_rt_origins",
     "https://a.example/path"),
    ("game_rt_rate 5;", "game_rt_rate", "5"),
    ("game_rt_rate 0r/s;", "game_rt_rate", "0r/s"),
    ("game_rt_rate 5r/s burst=x;", "game_rt_rate", "burst=x"),
    ("game_rt_max_message 100;", "game_rt_max_message", "100"),
    ("game_rt_send_queue 1k;", "game_rt_send_queue", "1024"),
    ("game_rt_ping_interval 0;", "game_rt_ping_interval", "0"),
    ("game_rt_ping_interval soon;", "game_rt_ping_interval",
     "invalid value"),
    ("server { listen 127.0.0.1:1; location /ws { game_rt chat; } }",
     "game_rt", "chat"),
    ("server { listen 127.0.0.1:1; location /ws { game_rt websocket; } }",
     "game_rt_redis", "game_rt"),
])
def test_bad_realtime_directives_fail_naming_the_directive(body, directive,
                                                           word):
    r = nginx_t_text("load_module %s;\nload_module %s;\npid @D@/nginx.pid;\n"
                     "error_log stderr;\nevents {}\nhttp {\n"
                     "game_redis_pool main 127.0.0.1:6379;\n%s\n}\n"
                     % (MODULE, RT, body))
    assert r.returncode != 0, r.stderr
    assert '"%s"' % directive in r.stderr, r.stderr
    assert word in r.stderr, r.stderr


def test_good_realtime_configuration_passes(tmp_path):
    """(A "game_rt websocket" location needs the auth module too: the
    shipped configurations cover it.)  A one-digit rate is a rate."""
    key = tmp_path / "admin.key"
    key.write_text("x" * 40 + "\n")
    r = nginx_t_text("load_module %s;\nload_module %s;\npid @D@/nginx.pid;\n"
                     "error_log stderr;\nevents {}\nhttp {\n"
                     "game_redis_pool main 127.0.0.1:6379;\n"
                     "game_rt_admin ops %s;\n"
                     "game_rt_redis main;\n"
                     "game_rt_origins https://play.example.com "
                     "http://localhost:8080;\n"
                     "game_rt_rate 5r/s burst=20;\n"
                     "game_rt_send_queue 32k;\n"
                     "server { listen 127.0.0.1:1;\n"
                     "  location = /admin/notify { game_rt notify; } }\n"
                     "}\n" % (MODULE, RT, key))
    assert r.returncode == 0, r.stderr


def test_realtime_admins_are_checked_at_nginx_t(tmp_path):
    """game_rt_admin (the core's admin check, the realtime module's list):
    a bad name, a duplicate, a missing file and a short secret fail nginx
    -t naming the directive, never the secret; a notify location without
    an admin fails too."""
    short = tmp_path / "short.key"
    short.write_text("too-short-a-secret\n")
    good = tmp_path / "good.key"
    good.write_text("x" * 40 + "\n")

    def t(body):
        r = nginx_t_text("load_module %s;\nload_module %s;\n"
                         "pid @D@/nginx.pid;\nerror_log stderr;\n"
                         "events {}\nhttp {\n"
                         "game_redis_pool main 127.0.0.1:6379;\n"
                         "game_rt_redis main;\n%s\n}\n" % (MODULE, RT, body))
        return r.returncode, r.stderr

    rc, err = t("game_rt_admin ops %s; game_rt_admin ops %s;" % (good, good))
    assert rc != 0 and "duplicate admin" in err and "game_rt_admin" in err

    rc, err = t("game_rt_admin 'o p' %s;" % good)
    assert rc != 0 and "invalid admin name" in err and "game_rt_admin" in err

    rc, err = t("game_rt_admin ops %s;" % (tmp_path / "missing.key"))
    assert rc != 0 and "game_rt_admin" in err and "missing.key" in err

    rc, err = t("game_rt_admin ops %s;" % short)
    assert rc != 0 and "at least 32 characters" in err
    assert "too-short" not in err

    rc, err = t("server { listen 127.0.0.1:1; "
                "location = /n { game_rt notify; } }")
    assert rc != 0 and "game_rt_admin" in err
