"""Integration tests for sql/ migrations and scripts/migrate.

They run against the real PostgreSQL of the test stack: the session fixture
``stack`` (tests/integration/conftest.py) provides

  stack.root    repository root
  stack.pg_dsn  libpq conninfo of a database with all migrations applied
  stack.env     environment for scripts (includes GAME_PG_DSN)

Tests that write to the shared database do so inside a transaction that is
rolled back, or restore what they changed. Tests that need a pristine
database create a scratch one (the stack's role needs CREATEDB) and drop it.
"""

import datetime
import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

import pytest

MIGRATION_RE = re.compile(r"^(\d+)_[A-Za-z0-9_-]+\.sql$")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def migration_files(root):
    """[(version, file name, path)] of sql/NNN_name.sql, in version order."""
    sql_dir = os.path.join(root, "sql")
    found = []
    for name in os.listdir(sql_dir):
        m = MIGRATION_RE.match(name)
        if m:
            found.append((int(m.group(1)), name, os.path.join(sql_dir, name)))
    found.sort()
    assert found, "no migrations found in %s" % sql_dir
    return found


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def migrate_cmd(stack):
    return [os.path.join(stack.root, "scripts", "migrate")]


def migrate_env(stack, dsn=None, **extra):
    env = dict(stack.env)
    if dsn is not None:
        env["GAME_PG_DSN"] = dsn
    env.update(extra)
    return env


def run_migrate(stack, *args, dsn=None, timeout=120, **extra_env):
    return subprocess.run(
        migrate_cmd(stack) + list(args),
        env=migrate_env(stack, dsn, **extra_env),
        capture_output=True, text=True, timeout=timeout)


def describe(proc):
    return "rc=%s\n--- stdout\n%s--- stderr\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)


def applied_rows(dsn):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version, name, checksum, applied_at"
                        " FROM schema_migrations ORDER BY version")
            return cur.fetchall()
    finally:
        conn.close()


def expect_error(cur, exc, query, args=None):
    """Run query inside a savepoint, assert it raises exc, roll back to it."""
    cur.execute("SAVEPOINT expect_error")
    with pytest.raises(exc) as info:
        cur.execute(query, args)
    cur.execute("ROLLBACK TO SAVEPOINT expect_error")
    return info.value


def new_player(cur, **cols):
    cols.setdefault("username", "p_" + uuid.uuid4().hex[:20])
    names = list(cols)
    cur.execute(
        sql.SQL("INSERT INTO players ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(sql.Placeholder() * len(names))),
        [cols[n] for n in names])
    return cur.fetchone()[0]


def month_start(d, offset):
    """First day of the month `offset` months after the month of d."""
    m = d.year * 12 + (d.month - 1) + offset
    return datetime.datetime(m // 12, m % 12 + 1, 1,
                             tzinfo=datetime.timezone.utc)


def partition_name(d):
    return "game_events_y%04dm%02d" % (d.year, d.month)


def migrate_lock_key(stack):
    """The advisory lock key scripts/migrate takes (single source: the script)."""
    with open(migrate_cmd(stack)[0]) as f:
        m = re.search(r"^LOCK_KEY=(-?\d+)\s*$", f.read(), re.M)
    assert m, "LOCK_KEY=<bigint> not found in scripts/migrate"
    return int(m.group(1))


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture
def db(stack):
    """Connection to the migrated database; everything is rolled back."""
    conn = psycopg2.connect(stack.pg_dsn)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def scratch_dsn(stack):
    """conninfo of a fresh, empty database, dropped afterwards."""
    name = "migtest_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(stack.pg_dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(
                sql.Identifier(name)))
        try:
            yield psycopg2.extensions.make_dsn(stack.pg_dsn, dbname=name)
        finally:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                            .format(sql.Identifier(name)))
    finally:
        admin.close()


# --------------------------------------------------------------------------
# scripts/migrate against the stack database
# --------------------------------------------------------------------------

def test_migrate_again_applies_nothing(stack):
    files = migration_files(stack.root)
    before = applied_rows(stack.pg_dsn)

    proc = run_migrate(stack)

    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "migrate: up to date (%d migrations)\n" % len(files), \
        describe(proc)
    after = applied_rows(stack.pg_dsn)
    assert after == before
    assert len(after) == len(files)
    assert len({r[0] for r in after}) == len(files)


def test_schema_migrations_match_sql_files(stack):
    files = migration_files(stack.root)
    rows = applied_rows(stack.pg_dsn)

    assert [(v, name, sha256_file(path)) for v, name, path in files] == \
        [(v, name, checksum) for v, name, checksum, _ in rows]
    assert all(applied_at is not None for *_, applied_at in rows)
    # Applied in order: a later migration was never applied before an
    # earlier one.
    times = [applied_at for *_, applied_at in rows]
    assert times == sorted(times)


def test_status_lists_every_migration_as_applied(stack):
    files = migration_files(stack.root)

    proc = run_migrate(stack, "--status")

    assert proc.returncode == 0, describe(proc)
    lines = proc.stdout.splitlines()
    assert len(lines) == len(files), describe(proc)
    for line, (_, name, _) in zip(lines, files):
        assert line.startswith("applied  %s " % name), line


def test_migrate_rejects_unknown_option_and_missing_dsn(stack):
    proc = run_migrate(stack, "--no-such-option")
    assert proc.returncode == 2, describe(proc)

    env = migrate_env(stack)
    env.pop("GAME_PG_DSN", None)
    proc = subprocess.run(migrate_cmd(stack), env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, describe(proc)
    assert "GAME_PG_DSN" in proc.stderr


def test_tampered_checksum_makes_migrate_fail_naming_the_file(stack):
    files = migration_files(stack.root)
    version, name, _ = files[0]
    conn = psycopg2.connect(stack.pg_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT checksum FROM schema_migrations"
                        " WHERE version = %s", (version,))
            (original,) = cur.fetchone()
            cur.execute("UPDATE schema_migrations SET checksum = 'x'"
                        " WHERE version = %s", (version,))
        try:
            proc = run_migrate(stack)
            assert proc.returncode != 0, describe(proc)
            assert name in proc.stderr, describe(proc)
            assert "checksum" in proc.stderr, describe(proc)
            assert "up to date" not in proc.stdout, describe(proc)

            status = run_migrate(stack, "--status")
            assert status.returncode != 0, describe(status)
            assert re.search(r"^CHANGED\s+%s" % re.escape(name),
                             status.stdout, re.M), describe(status)
        finally:
            with conn.cursor() as cur:
                cur.execute("UPDATE schema_migrations SET checksum = %s"
                            " WHERE version = %s", (original, version))
    finally:
        conn.close()

    proc = run_migrate(stack)
    assert proc.returncode == 0, describe(proc)


# --------------------------------------------------------------------------
# scripts/migrate against scratch databases
# --------------------------------------------------------------------------

def test_concurrent_migrators_apply_each_migration_once(stack, scratch_dsn):
    files = migration_files(stack.root)
    key = migrate_lock_key(stack)

    # Hold the migrators' advisory lock so both runs are provably in flight
    # at the same time, then let them race for it.
    holder = psycopg2.connect(scratch_dsn)
    watcher = psycopg2.connect(scratch_dsn)
    watcher.autocommit = True
    procs = []
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        for _ in range(2):
            procs.append(subprocess.Popen(
                migrate_cmd(stack), env=migrate_env(stack, scratch_dsn),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

        deadline = time.monotonic() + 30
        waiting = 0
        while time.monotonic() < deadline:
            with watcher.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_locks l"
                    "  JOIN pg_database d ON d.oid = l.database"
                    " WHERE l.locktype = 'advisory' AND NOT l.granted"
                    "   AND d.datname = current_database()"
                    "   AND l.classid::bigint = %s AND l.objid::bigint = %s",
                    (key >> 32, key & 0xFFFFFFFF))
                (waiting,) = cur.fetchone()
            if waiting == 2:
                break
            exited = [p for p in procs if p.poll() is not None]
            assert not exited, "migrate exited while the lock was held: " + \
                "; ".join("rc=%s %s %s" % ((p.returncode,) + p.communicate())
                          for p in exited)
            time.sleep(0.05)
        assert waiting == 2, "both migrators should block on the advisory lock"
    finally:
        holder.rollback()  # releases the lock
        holder.close()
        watcher.close()
        outputs = []
        for p in procs:
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            outputs.append((p.returncode, out, err))

    for rc, out, err in outputs:
        assert rc == 0, "rc=%s\n%s\n%s" % (rc, out, err)

    applied_lines = [line for _, out, _ in outputs
                     for line in out.splitlines()
                     if line.startswith("migrate: applied ")]
    assert sorted(applied_lines) == sorted(
        "migrate: applied %s" % name for _, name, _ in files), outputs

    rows = applied_rows(scratch_dsn)
    assert [(v, name, sha256_file(path)) for v, name, path in files] == \
        [(v, name, checksum) for v, name, checksum, _ in rows]

    conn = psycopg2.connect(scratch_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('players') IS NOT NULL,"
                        "       to_regclass('game_events') IS NOT NULL")
            assert cur.fetchone() == (True, True)
    finally:
        conn.close()


def test_failed_migration_is_rolled_back_and_not_recorded(
        stack, scratch_dsn, tmp_path):
    files = migration_files(stack.root)
    for _, name, path in files:
        shutil.copy(path, tmp_path / name)
    extra = "%03d_broken_on_purpose.sql" % (files[-1][0] + 1)
    (tmp_path / extra).write_text(
        "CREATE TABLE migtest_half_done (x int);\n"
        "SELECT 1 / 0;\n")

    proc = run_migrate(stack, dsn=scratch_dsn,
                       GAME_MIGRATIONS_DIR=str(tmp_path))

    assert proc.returncode != 0, describe(proc)
    assert extra in proc.stderr, describe(proc)
    # The good migrations before it were applied, one line each, in order.
    assert proc.stdout.splitlines() == [
        "migrate: applied %s" % name for _, name, _ in files], describe(proc)
    rows = applied_rows(scratch_dsn)
    assert [r[1] for r in rows] == [name for _, name, _ in files]
    conn = psycopg2.connect(scratch_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('migtest_half_done')")
            assert cur.fetchone() == (None,), \
                "a failed migration must leave nothing behind"
    finally:
        conn.close()

    # Fixed (it was never recorded, so it may still change): applied now,
    # and only it.
    (tmp_path / extra).write_text("CREATE TABLE migtest_half_done (x int);\n")
    proc = run_migrate(stack, dsn=scratch_dsn,
                       GAME_MIGRATIONS_DIR=str(tmp_path))
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "migrate: applied %s\n" % extra, describe(proc)
    assert len(applied_rows(scratch_dsn)) == len(files) + 1


# --------------------------------------------------------------------------
# schema behaviour
# --------------------------------------------------------------------------

def test_currency_balance_cannot_go_negative(db):
    with db.cursor() as cur:
        expect_error(cur, psycopg2.errors.CheckViolation,
                     "INSERT INTO players (soft_currency) VALUES (-1)")
        expect_error(cur, psycopg2.errors.CheckViolation,
                     "INSERT INTO players (hard_currency) VALUES (-1)")

        pid = new_player(cur, soft_currency=10, hard_currency=5)
        # An overdraft by one is refused ...
        err = expect_error(
            cur, psycopg2.errors.CheckViolation,
            "UPDATE players SET soft_currency = soft_currency - 11"
            " WHERE id = %s", (pid,))
        assert err.diag.constraint_name == "players_soft_currency_nonnegative"
        expect_error(
            cur, psycopg2.errors.CheckViolation,
            "UPDATE players SET hard_currency = hard_currency - 6"
            " WHERE id = %s", (pid,))
        # ... spending exactly the balance is fine.
        cur.execute("UPDATE players SET soft_currency = soft_currency - 10,"
                    " hard_currency = hard_currency - 5 WHERE id = %s"
                    " RETURNING soft_currency, hard_currency", (pid,))
        assert cur.fetchone() == (0, 0)


def test_new_player_defaults(db):
    with db.cursor() as cur:
        cur.execute("INSERT INTO players DEFAULT VALUES RETURNING id, username,"
                    " level, xp, soft_currency, hard_currency, totp_enabled,"
                    " created_at IS NOT NULL")
        pid, username, level, xp, soft, hard, totp, created = cur.fetchone()
        assert isinstance(pid, str) and uuid.UUID(pid)
        assert (username, level, xp, soft, hard, totp, created) == \
            (None, 1, 0, 0, 0, False, True)
        expect_error(cur, psycopg2.errors.CheckViolation,
                     "UPDATE players SET level = 0 WHERE id = %s", (pid,))
        expect_error(cur, psycopg2.errors.CheckViolation,
                     "UPDATE players SET xp = -1 WHERE id = %s", (pid,))


def test_username_unique_case_insensitively(db):
    base = "Alice_" + uuid.uuid4().hex[:16]
    with db.cursor() as cur:
        new_player(cur, username=base)
        expect_error(cur, psycopg2.errors.UniqueViolation,
                     "INSERT INTO players (username) VALUES (%s)",
                     (base.lower(),))
        expect_error(cur, psycopg2.errors.UniqueViolation,
                     "INSERT INTO players (username) VALUES (%s)",
                     (base.swapcase(),))
        # Guests have no name yet; any number of them may exist.
        new_player(cur, username=None, device_id="dev-" + uuid.uuid4().hex)
        new_player(cur, username=None, device_id="dev-" + uuid.uuid4().hex)
        # The index the login lookup relies on finds the name either way.
        cur.execute("SELECT count(*) FROM players"
                    " WHERE lower(username) = lower(%s)", (base.upper(),))
        assert cur.fetchone() == (1,)


def test_device_id_and_email_index_are_unique(db):
    device = "dev-" + uuid.uuid4().hex
    email_index = os.urandom(32)
    with db.cursor() as cur:
        new_player(cur, username=None, device_id=device,
                   email_ciphertext=b"c1", email_index=email_index)
        expect_error(cur, psycopg2.errors.UniqueViolation,
                     "INSERT INTO players (device_id) VALUES (%s)", (device,))
        expect_error(cur, psycopg2.errors.UniqueViolation,
                     "INSERT INTO players (email_ciphertext, email_index)"
                     " VALUES ('c2', %s)", (email_index,))


def test_idempotency_key_unique_per_player(db):
    key = "purchase-" + uuid.uuid4().hex
    with db.cursor() as cur:
        alice = new_player(cur, soft_currency=100)
        bob = new_player(cur, soft_currency=100)
        insert = ("INSERT INTO transactions (player_id, kind,"
                  " soft_currency_delta, idempotency_key, request_hash)"
                  " VALUES (%s, 'purchase', -10, %s, %s)")
        cur.execute(insert, (alice, key, b"h1"))
        # A retry of the same request by the same player is refused ...
        err = expect_error(cur, psycopg2.errors.UniqueViolation, insert,
                           (alice, key, b"h1"))
        assert err.diag.constraint_name == "transactions_player_idempotency_key"
        # ... but another player may use the same key.
        cur.execute(insert, (bob, key, b"h1"))
        cur.execute("SELECT count(*) FROM transactions"
                    " WHERE idempotency_key = %s", (key,))
        assert cur.fetchone() == (2,)


def test_inventory_quantity_positive_and_within_max_stack(db):
    code = "migtest_" + uuid.uuid4().hex[:12]
    with db.cursor() as cur:
        pid = new_player(cur)
        cur.execute("INSERT INTO item_templates (id, name, kind, stackable,"
                    " max_stack, price_soft) VALUES (%s, 'Potion', 'consumable',"
                    " true, 20, 5)", (code,))
        expect_error(cur, psycopg2.errors.CheckViolation,
                     "INSERT INTO item_templates (id, name, kind, price_soft)"
                     " VALUES (%s, 'x', 'misc', -1)", (code + "_neg",))
        ins = ("INSERT INTO inventory_items (player_id, template_id, quantity)"
               " VALUES (%s, %s, %s)")
        expect_error(cur, psycopg2.errors.CheckViolation, ins, (pid, code, 0))
        expect_error(cur, psycopg2.errors.CheckViolation, ins, (pid, code, 21))
        cur.execute(ins, (pid, code, 20))
        expect_error(cur, psycopg2.errors.ForeignKeyViolation, ins,
                     (pid, code + "_missing", 1))


def test_game_session_status_is_constrained(db):
    with db.cursor() as cur:
        expect_error(cur, psycopg2.errors.CheckViolation,
                     "INSERT INTO game_sessions (mode, region, status)"
                     " VALUES ('duel', 'eu', 'bogus')")
        cur.execute("INSERT INTO game_sessions (mode, region, server_id,"
                    " server_host, server_port) VALUES ('duel', 'eu', 's1',"
                    " '10.0.0.1', 7777) RETURNING id, status")
        sid, status = cur.fetchone()
        assert status == "allocated"
        cur.execute("UPDATE game_sessions SET status = 'playing',"
                    " started_at = now() WHERE id = %s", (sid,))
        # Finishing without an end time would make the row lie.
        expect_error(cur, psycopg2.errors.CheckViolation,
                     "UPDATE game_sessions SET status = 'finished'"
                     " WHERE id = %s", (sid,))
        cur.execute("UPDATE game_sessions SET status = 'finished',"
                    " ended_at = now() WHERE id = %s", (sid,))


def test_game_events_land_in_monthly_partitions(db):
    with db.cursor() as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        cur.execute("SELECT now()")
        (now,) = cur.fetchone()
        now = now.astimezone(datetime.timezone.utc)

        # Current month and the next three exist, with exact UTC month
        # bounds.
        cur.execute("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
                    "  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'game_events'::regclass")
        parts = dict(cur.fetchall())
        assert parts.get("game_events_default") == "DEFAULT"
        for offset in range(4):
            start = month_start(now, offset)
            end = month_start(now, offset + 1)
            name = partition_name(start)
            assert name in parts, "missing partition %s (have %s)" % (
                name, sorted(parts))
            assert parts[name] == (
                "FOR VALUES FROM ('%s') TO ('%s')" % (
                    start.strftime("%Y-%m-%d 00:00:00+00"),
                    end.strftime("%Y-%m-%d 00:00:00+00")))

        player = str(uuid.uuid4())
        cur.execute("INSERT INTO game_events (player_id, kind, payload)"
                    " VALUES (%s, 'migtest.now', '{}')"
                    " RETURNING id, tableoid::regclass::text", (player,))
        first_id, part = cur.fetchone()
        assert part == partition_name(now)

        # A row two months ahead goes to that month's partition, a row
        # from long ago to the default partition (insert never fails).
        ahead = month_start(now, 2) + datetime.timedelta(days=9, hours=5)
        cur.execute("INSERT INTO game_events (occurred_at, player_id, kind)"
                    " VALUES (%s, %s, 'migtest.ahead')"
                    " RETURNING id, tableoid::regclass::text", (ahead, player))
        second_id, part = cur.fetchone()
        assert part == partition_name(ahead)
        assert second_id > first_id
        cur.execute("INSERT INTO game_events (occurred_at, kind)"
                    " VALUES ('1999-12-31 23:59:59+00', 'migtest.old')"
                    " RETURNING tableoid::regclass::text")
        assert cur.fetchone() == ("game_events_default",)

        # Last instant of a month belongs to that month, not the next.
        edge = month_start(now, 2) - datetime.timedelta(microseconds=1)
        cur.execute("INSERT INTO game_events (occurred_at, kind)"
                    " VALUES (%s, 'migtest.edge')"
                    " RETURNING tableoid::regclass::text", (edge,))
        assert cur.fetchone() == (partition_name(month_start(now, 1)),)

        cur.execute("SELECT count(*) FROM game_events WHERE player_id = %s",
                    (player,))
        assert cur.fetchone() == (2,)


def test_ensure_partitions_is_idempotent_and_rescues_default_rows(db):
    with db.cursor() as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        cur.execute("SELECT game_events_ensure_partitions(3)")
        cur.execute("SELECT game_events_ensure_partitions(3)")
        assert cur.fetchone() == (0,)

        cur.execute("SELECT now()")
        (now,) = cur.fetchone()
        target = month_start(now.astimezone(datetime.timezone.utc), 3)
        name = partition_name(target)

        # Simulate the partition job being late: the month's partition is
        # missing, so an event for it lands in the default partition.
        cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
        cur.execute("INSERT INTO game_events (occurred_at, kind)"
                    " VALUES (%s, 'migtest.late')"
                    " RETURNING id, tableoid::regclass::text",
                    (target + datetime.timedelta(days=3),))
        event_id, part = cur.fetchone()
        assert part == "game_events_default"

        cur.execute("SELECT game_events_ensure_partitions(3)")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT tableoid::regclass::text FROM game_events"
                    " WHERE id = %s", (event_id,))
        assert cur.fetchall() == [(name,)]
        cur.execute("SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c"
                    " WHERE c.oid = %s::regclass", (name,))
        assert cur.fetchone()[0].startswith(
            "FOR VALUES FROM ('%s" % target.strftime("%Y-%m-%d"))

        expect_error(cur, psycopg2.errors.InvalidParameterValue,
                     "SELECT game_events_ensure_partitions(-1)")
