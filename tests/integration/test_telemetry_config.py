"""Telemetry's configuration mistakes surface at `nginx -t`, naming the
directive and the bad value (no stack: nginx -t only)."""

import json
import os
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.environ.get("GAME_MODULES", os.path.join(ROOT, "build", "modules"))
CORE = os.path.join(MODULES, "ngx_game_core_module.so")
TEL = os.path.join(MODULES, "ngx_game_tel_module.so")
TYPES = os.path.join(ROOT, "conf", "telemetry-types.json")


def nginx_t(body, files=None):
    with tempfile.TemporaryDirectory(prefix="game-tel-conf.") as d:
        for name, text in (files or {}).items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("load_module %s;\nload_module %s;\npid %s/nginx.pid;\n"
                    "error_log stderr;\nevents {}\nhttp {\n%s\n}\n"
                    % (CORE, TEL, d, body.replace("@D@", d)))
        r = subprocess.run(["nginx", "-t", "-p", d, "-c", conf, "-e",
                            "stderr"], capture_output=True, text=True)
    return r.returncode, r.stderr


BASE = ('game_pg_pool main "host=127.0.0.1 port=1 dbname=x";\n'
        'game_redis_pool main 127.0.0.1:6379;\n'
        'game_tel_pg main;\ngame_tel_redis main;\n'
        'game_tel_player $remote_user;\n'
        'game_tel_types %s;\n' % TYPES)
SERVER = 'server { listen 127.0.0.1:1; location / { game_tel ingest; } }\n'


def test_the_shipped_types_and_a_good_configuration_pass():
    rc, err = nginx_t(BASE + SERVER)
    assert rc == 0, err


@pytest.mark.parametrize("line, directive, word", [
    ("game_tel_rate fast;", "game_tel_rate", "fast"),
    ("game_tel_rate 100 bust=10;", "game_tel_rate", "bust=10"),
    ("game_tel_max_events 5000;", "game_tel_max_events", "5000"),
    ("game_tel_max_backlog 0;", "game_tel_max_backlog", ""),
    ("game_tel_partitions weekly;", "game_tel_partitions", "weekly"),
    ("game_tel_partitions day ahead=0;", "game_tel_partitions", "ahead=0"),
    ("game_tel_retention 1h;", "game_tel_retention", "1h"),
    ("game_tel_retention 90d shred;", "game_tel_retention", "shred"),
    ("game_tel_mode dm max_speed=12;", "game_tel_mode", "arena"),
    ("game_tel_mode dm max_speed=fast arena=1x1 teleport=1;",
     "game_tel_mode", "max_speed=fast"),
    ("game_tel_weapon rifle max_rate=-1;", "game_tel_weapon", "max_rate=-1"),
    ("game_tel_rule nosuch points=1;", "game_tel_rule", "nosuch"),
    ("game_tel_rule hit_ratio points=5 max_ratio=2;", "game_tel_rule",
     "max_ratio=2"),
    ("game_tel_rate 100 burst=10;", "game_tel_rate", "burst=10"),
    ("game_tel_dedupe_window 1h;", "game_tel_dedupe_window", ""),
    ("game_tel_writer colour=red;", "game_tel_writer", "colour=red"),
    ('game_pg_pool bulk "host=127.0.0.1 port=1 dbname=x" copy=maybe;',
     "game_pg_pool", "copy=maybe"),
    ("game_tel_writer_copy_pg nosuch;", "nosuch", "game_pg_pool"),
])
def test_bad_value_fails_naming_the_directive(line, directive, word):
    rc, err = nginx_t(BASE + line + "\n" + SERVER)
    assert rc != 0
    assert '"%s"' % directive in err, err
    assert word in err, err
    assert "test failed" in err


@pytest.mark.parametrize("types, word", [
    ('{"types": {"x": {"from": "moon", "fields": {}}}}', '"from"'),
    ('{"types": {"x": {"fields": {"a": {"type": "colour"}}}}}',
     'field "a"'),
    ('{"types": {"x": {"fields": {}}, "x": {"fields": {}}}}', "duplicate"),
    ('{"types": [', ""),
])
def test_a_bad_types_file_fails_naming_the_file(types, word):
    body = BASE.replace(TYPES, "@D@/types.json") + SERVER
    rc, err = nginx_t(body, {"types.json": types})
    assert rc != 0
    assert '"game_tel_types"' in err and "types.json" in err, err
    assert word in err, err


def test_a_copy_pool_for_the_writer_passes():
    rc, err = nginx_t(BASE + 'game_pg_pool bulk "host=127.0.0.1 port=1 '
                      'dbname=x" copy=on;\ngame_tel_writer_copy_pg bulk;\n'
                      + SERVER)
    assert rc == 0, err
