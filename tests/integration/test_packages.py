"""The Debian packages (`make deb`, scripts/build-deb), installed for real.

The packages are built from this tree, unpacked into a scratch root as
dpkg would install them, and the modules loaded from there into Debian's
own /usr/sbin/nginx with `nginx -t`, through the load_module snippets and
the modules-enabled links their maintainer scripts make.  The systemd
units are checked by `systemd-analyze verify` against the scratch root, and
the packaged migrations are applied to an empty database.
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile

import psycopg2
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NGINX = "/usr/sbin/nginx"
ABI_VARS = "/usr/share/nginx/src/debian/libnginx-mod.abisubstvars"


def module_lines():
    """(name, module, priority) of each line of packaging/deb/modules."""
    out = []
    with open(os.path.join(ROOT, "packaging", "deb", "modules")) as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                name, module, prio = line.split()[:3]
                out.append((name, module, int(prio)))
    return out


@pytest.fixture(scope="module")
def debs():
    r = subprocess.run([os.path.join(ROOT, "scripts", "build-deb")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    found = {}
    for path in glob.glob(os.path.join(ROOT, "build", "deb", "*.deb")):
        name = os.path.basename(path).split("_")[0]
        found[name] = path
    return found


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", deb, name], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def scratch(debs):
    """A root with every package unpacked, and what their postinst does."""
    root = tempfile.mkdtemp(prefix="game-debs.")
    for name, deb in debs.items():
        if not name.endswith("-dbgsym"):
            subprocess.run(["dpkg-deb", "-x", deb, root], check=True)

    # nginx-common's link, through which "modules/x.so" resolves
    os.makedirs(os.path.join(root, "usr", "share", "nginx"), exist_ok=True)
    os.symlink("../../lib/nginx/modules",
               os.path.join(root, "usr", "share", "nginx", "modules"))

    # the links the postinst scripts make: "from:to" pairs from dh_nginx
    enabled = os.path.join(root, "etc", "nginx", "modules-enabled")
    os.makedirs(enabled)
    ctl = tempfile.mkdtemp(prefix="game-debs-ctl.")
    for name, deb in debs.items():
        if not name.startswith("libnginx-mod-game-") or "dbgsym" in name:
            continue
        shutil.rmtree(ctl)
        subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True)
        with open(os.path.join(ctl, "postinst")) as f:
            pairs = re.search(r"for confpair in (.*) ; do", f.read()).group(1)
        for pair in pairs.split():
            src, dst = pair.split(":")
            os.symlink(os.path.join(root, "usr", "share", "nginx",
                                    "modules-available", src),
                       os.path.join(enabled, dst))
    shutil.rmtree(ctl)

    yield root
    shutil.rmtree(root)


def nginx_t(root, conf_text):
    """nginx -t of conf_text with the scratch root's nginx prefix."""
    conf = os.path.join(root, "nginx-test.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    return subprocess.run(
        [NGINX, "-t", "-p", os.path.join(root, "usr", "share", "nginx") + "/",
         "-e", "stderr", "-c", conf,
         "-g", "pid %s/nginx.pid;" % root],
        capture_output=True, text=True)


def test_one_module_package_per_line(debs):
    abi = None
    with open(ABI_VARS) as f:
        for line in f:
            if line.startswith("nginx:abi="):
                abi = line.split("=", 1)[1].strip()
    assert abi and abi.startswith("nginx-abi-")

    for name, module, prio in module_lines():
        deb = debs["libnginx-mod-game-" + name]
        files = subprocess.run(["dpkg-deb", "-c", deb], check=True,
                               capture_output=True, text=True).stdout
        assert "./usr/lib/nginx/modules/%s.so" % module in files
        assert ("./usr/share/nginx/modules-available/mod-game-%s.conf" % name
                in files)

        # Debian's nginx loads only modules built for its ABI
        depends = [d.strip() for d in field(deb, "Depends").split(",")]
        assert abi in depends
        if name != "core":
            assert ("libnginx-mod-game-core (= %s)" % field(deb, "Version")
                    in depends)


def test_snippets_load_into_the_stock_nginx(scratch):
    enabled = sorted(os.listdir(os.path.join(scratch, "etc", "nginx",
                                             "modules-enabled")))
    lines = module_lines()
    assert enabled == sorted("%d-mod-game-%s.conf" % (p, n)
                             for n, m, p in lines)
    # the core's snippet sorts first: the services resolve its symbols
    assert enabled[0] == "%d-mod-game-core.conf" % lines[0][2]

    for n, module, p in lines:
        with open(os.path.join(scratch, "usr", "share", "nginx",
                               "modules-available",
                               "mod-game-%s.conf" % n)) as f:
            assert f.read() == "load_module modules/%s.so;\n" % module

    # as Debian's nginx.conf includes them, with a directive of the core
    # so that the module is really in the configuration, not just loaded
    r = nginx_t(scratch, """
include %s/etc/nginx/modules-enabled/*.conf;
events {}
http {
    game_body_limit 16k;
    server { listen 127.0.0.1:1; location / { game_health; } }
}
""" % scratch)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


def test_services_do_not_load_without_the_core(scratch):
    # what the load priorities prevent: nginx -t fails, naming a symbol
    # of the core that the service module cannot find
    r = nginx_t(scratch, """
load_module modules/ngx_game_auth_module.so;
events {}
""")
    assert r.returncode != 0
    assert "ngx_game_auth_module.so" in r.stderr
    assert "undefined symbol" in r.stderr


def test_game_server_package(debs, scratch):
    files = subprocess.run(["dpkg-deb", "-c", debs["game-server"]], check=True,
                           capture_output=True, text=True).stdout
    for prog in ("game-server", "game-fleet", "game-bot", "game-allocate"):
        assert "./usr/bin/%s\n" % prog in files + "\n"

    r = subprocess.run([os.path.join(scratch, "usr", "bin", "game-server"),
                        "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: game-server" in r.stdout

    # the fleet's configuration is the admin's: a conffile
    ctl = tempfile.mkdtemp(prefix="game-debs-ctl.")
    try:
        subprocess.run(["dpkg-deb", "-e", debs["game-server"], ctl],
                       check=True)
        with open(os.path.join(ctl, "conffiles")) as f:
            assert "/etc/game-backend/fleet.conf" in f.read().split()
    finally:
        shutil.rmtree(ctl)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_systemd_units_verify(scratch):
    # the units against the scratch root, which needs the system's own
    # units (targets) beside ours
    units = os.path.join(scratch, "lib", "systemd", "system")
    ours = sorted(os.listdir(units))
    assert ours == ["game-fleet.service", "game-server@.service"]
    for unit in glob.glob("/lib/systemd/system/*"):
        dst = os.path.join(units, os.path.basename(unit))
        if not os.path.lexists(dst) and not os.path.isdir(unit):
            shutil.copy(unit, dst, follow_symlinks=False)

    for unit in ("game-fleet.service", "game-server@test.service"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            "--root=" + scratch,
                            "/lib/systemd/system/" + unit],
                           capture_output=True, text=True)
        # a bad value is only a warning: none is wanted either
        assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_packaged_migrations_apply(stack, scratch):
    sql = sorted(os.listdir(os.path.join(ROOT, "sql")))
    packaged = sorted(os.listdir(os.path.join(
        scratch, "usr", "share", "game-backend", "sql")))
    assert packaged == sql

    name = "game_pkg_test"
    conn = psycopg2.connect(stack.pg_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s" % name)
            cur.execute("CREATE DATABASE %s" % name)
        dsn = psycopg2.extensions.make_dsn(stack.pg_dsn, dbname=name)

        # the script finds the migrations beside it, where it is installed
        migrate = os.path.join(scratch, "usr", "share", "game-backend",
                               "scripts", "migrate")
        env = dict(os.environ, GAME_PG_DSN=dsn)
        env.pop("GAME_MIGRATIONS_DIR", None)
        r = subprocess.run([migrate], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr

        with psycopg2.connect(dsn) as db, db.cursor() as cur:
            cur.execute("SELECT count(*) FROM schema_migrations")
            assert cur.fetchone()[0] == len(sql)
        db.close()
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s" % name)
        conn.close()
