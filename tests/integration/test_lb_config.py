"""The leaderboards' directives are checked at `nginx -t`: a bad board, a
bad value, a missing pool or admin fails, naming the directive and the
value."""

import os
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.path.join(ROOT, "build", "modules")

POOLS = ('game_pg_pool main "host=127.0.0.1 port=1 dbname=x";\n'
         'game_redis_pool main 127.0.0.1:6379;\n'
         'game_lb_pg main;\ngame_lb_redis main;\n')


def nginx_t(http_body):
    d = tempfile.mkdtemp(prefix="game-conf.")
    secret = os.path.join(d, "admin.key")
    with open(secret, "w") as f:
        f.write("s" * 40 + "\n")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("load_module %s/ngx_game_core_module.so;\n"
                "load_module %s/ngx_game_lb_module.so;\n"
                "pid %s/nginx.pid;\nerror_log stderr;\nevents {}\n"
                "http {\n%s\n}\n"
                % (MODULES, MODULES, d, http_body.replace("@KEY@", secret)))
    r = subprocess.run(["nginx", "-t", "-p", d, "-c", conf, "-e", "stderr"],
                       capture_output=True, text=True)
    return r.returncode, r.stderr


GOOD = POOLS + (
    "game_lb_player $remote_user;\n"
    "game_lb_admin ops @KEY@;\n"
    "game_lb_cache 1m;\ngame_lb_cache_ttl 500ms;\ngame_lb_tick 2s;\n"
    "game_lb_rebuild_batch 5000;\ngame_lb_clock real;\n"
    "game_lb_consumer batch=20 claim_idle=30s;\n"
    "game_leaderboard rating_duel sort=desc operator=set "
    "source=rating:duel reset=never;\n"
    "game_leaderboard kills sort=desc operator=incr source=kills "
    "reset=weekly regions=on;\n"
    "game_leaderboard fast sort=asc operator=best source=score:race "
    "reset=daily regions=off;\n"
    "game_leaderboard wins sort=desc operator=incr source=wins "
    "reset=monthly;\n"
    "server { listen 127.0.0.1:1;\n"
    "  location /a { game_lb page; }\n"
    "  location /b { game_lb around_me; }\n"
    "  location /c { game_lb admin_recompute; }\n"
    "  location /d { game_lb stats; } }\n")


def test_a_good_configuration_passes():
    rc, err = nginx_t(GOOD)
    assert rc == 0, err


BOARD = "game_leaderboard b sort=desc operator=set source=kills %s;"


@pytest.mark.parametrize("line, word", [
    (BOARD % "sort=up", "sort=up"),
    (BOARD % "operator=max", "operator=max"),
    (BOARD % "reset=hourly", "reset=hourly"),
    (BOARD % "regions=yes", "regions=yes"),
    (BOARD % "colour=red", "colour=red"),
    (BOARD % "sort=asc", "sort=asc"),          # given twice
    ("game_leaderboard b sort=desc operator=set source=deaths;",
     "source=deaths"),
    ("game_leaderboard b sort=desc operator=set source=rating;",
     "source=rating"),                         # ratings are per mode
    ("game_leaderboard b sort=desc operator=set source=kills:Duel;",
     "source=kills:Duel"),
    ("game_leaderboard b sort=desc operator=set source=kills:;",
     "source=kills:"),
    ("game_leaderboard b sort=desc operator=set;", "source="),
    ("game_leaderboard b operator=set source=kills;", "sort="),
    ("game_leaderboard Kills sort=desc operator=set source=kills;",
     "Kills"),
    ("game_leaderboard a:b sort=desc operator=set source=kills;", "a:b"),
    ("game_leaderboard %s sort=desc operator=set source=kills;" % ("x" * 33),
     "x" * 33),
    ("game_leaderboard b sort=desc operator=set source=kills;\n"
     "game_leaderboard b sort=desc operator=set source=wins;", "duplicate"),
    ("game_lb_cache lots;", "lots"),
    ("game_lb_cache 1k;", "1k"),
    ("game_lb_cache_ttl soon;", "soon"),
    ("game_lb_clock fake;", "fake"),
    ("game_lb_consumer batch=0;", "batch=0"),
    ("game_lb_admin ops /nonexistent/key;", "/nonexistent/key"),
    ("game_lb_admin o:ps @KEY@;", "o:ps"),
    ("server { location / { game_lb leaders; } }", "leaders"),
])
def test_a_bad_directive_fails_naming_it(line, word):
    rc, err = nginx_t(POOLS + line)
    assert rc != 0, err
    directive = line.split()[0] if not line.startswith("server") \
        else "game_lb"
    assert '"%s"' % directive in err, err
    assert word in err, err


def test_locations_need_what_they_use():
    rc, err = nginx_t(POOLS + "server { location / { game_lb around_me; } }")
    assert rc != 0 and "game_lb_player" in err
    rc, err = nginx_t(POOLS + "server { location / { game_lb admin_remove; }"
                              " }")
    assert rc != 0 and "game_lb_admin" in err
    rc, err = nginx_t("game_leaderboard b sort=desc operator=set "
                      "source=kills;")
    assert rc != 0 and "game_lb_pg" in err
    rc, err = nginx_t(POOLS + "game_lb_rebuild_batch 0;")
    assert rc != 0 and "game_lb_rebuild_batch" in err
