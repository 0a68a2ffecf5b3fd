"""The auth module's directives are checked when nginx loads the
configuration, and errors name the directive."""

import os
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.environ.get("GAME_MODULES", os.path.join(ROOT, "build", "modules"))


def public_half(stack):
    """jwt-1.pub.pem beside the test keys: a verify-only key."""
    keys = os.path.join(stack.var, "keys")
    pub = os.path.join(keys, "jwt-1.pub.pem")
    if not os.path.exists(pub):
        subprocess.run(["openssl", "ec", "-in", os.path.join(keys, "jwt-1.pem"),
                        "-pubout", "-out", pub], check=True,
                       capture_output=True)
    return pub


def nginx_t(stack, http):
    public_half(stack)
    keys = os.path.join(stack.var, "keys")
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
load_module %(m)s/ngx_game_core_module.so;
load_module %(m)s/ngx_game_auth_module.so;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events {}
http {
    access_log off;
    game_pg_pool main "host=127.0.0.1 port=1 dbname=x user=x";
    game_redis_pool main 127.0.0.1:1;
    %(http)s
    server { listen 127.0.0.1:1; location / { return 200; } }
}
""" % {"m": MODULES, "d": d, "http": http.replace("@KEYS@", keys)})
        r = subprocess.run(["nginx", "-t", "-p", d, "-c", conf, "-e",
                            os.path.join(d, "error.log")],
                           capture_output=True, text=True)
        return r.returncode, r.stderr


KEYS = """game_jwt_key 1 @KEYS@/jwt-1.pem;
          game_auth_email_key @KEYS@/email.key;
          game_auth_email_index_key @KEYS@/email-index.key;"""


def test_a_valid_configuration_loads(stack):
    rc, err = nginx_t(stack, KEYS + "server { listen 127.0.0.1:2; "
                      "location = /l { game_auth login; } "
                      "location /g { game_auth_jwt on; } }")
    assert rc == 0, err


def test_a_guard_needs_only_a_public_key(stack):
    rc, err = nginx_t(stack, "game_jwt_key 1 @KEYS@/jwt-1.pub.pem; "
                      "game_jwt_key 0 @KEYS@/jwt-0.pem use=verify; "
                      "server { listen 127.0.0.1:2; "
                      "location /g { game_auth_jwt on; } "
                      "location = /j { game_auth jwks; } }")
    assert rc == 0, err


@pytest.mark.parametrize("http,message", [
    ("server { listen 127.0.0.1:2; location /g { game_auth_jwt on; } }",
     '"game_auth_jwt" needs at least one "game_jwt_key"'),
    ("game_jwt_key 'bad kid' @KEYS@/jwt-1.pem;",
     'invalid key id "bad kid" in "game_jwt_key"'),
    ("game_jwt_key 1 @KEYS@/jwt-1.pem; game_jwt_key 1 @KEYS@/jwt-0.pem;",
     'duplicate key id "1"'),
    ("game_jwt_key 1 @KEYS@/email.key;", "no PEM key"),
    ("game_jwt_key 1 /nonexistent.pem;", "cannot open key file"),
    ("game_jwt_key 1 @KEYS@/jwt-1.pem use=both;",
     'invalid parameter "use=both" in "game_jwt_key"'),
    ("game_jwt_key 0 @KEYS@/jwt-0.pem use=sign; "
     "game_jwt_key 1 @KEYS@/jwt-1.pem use=sign;",
     'keys "0" and "1" both have use=sign'),
    ("game_jwt_key 1 @KEYS@/jwt-1.pub.pem use=sign;",
     "has no private part and cannot have use=sign"),
    # the directives the key store replaced say what to use instead
    ("game_auth_jwt_key 1 @KEYS@/jwt-1.pem;",
     '"game_auth_jwt_key" is replaced by "game_jwt_key'),
    (KEYS + "server { listen 127.0.0.1:2; location = /l { game_auth login; } }"
     "game_auth_jwt_cache -1;", '"game_auth_jwt_cache"'),
    (KEYS + "game_auth_recent_auth 0s;", '"game_auth_recent_auth"'),
    (KEYS + "game_auth_jwt_issuer 'a\"b';", '"game_auth_jwt_issuer"'),
    (KEYS + "game_auth_totp_issuer a/b;", '"game_auth_totp_issuer"'),
    (KEYS + "game_auth_argon2_iterations 0;", "game_auth_argon2_iterations"),
    (KEYS + "game_auth_argon2_memory 4k;", '"game_auth_argon2_memory"'),
    (KEYS + "game_auth_login_backoff_delay 0s;",
     '"game_auth_login_backoff_delay"'),
    ("game_auth_email_key @KEYS@/jwt-1.pem; game_auth_email_index_key "
     "@KEYS@/email.key;", 'in "game_auth_email_key" directive must hold'),
    (KEYS + "server { listen 127.0.0.1:2; location = /l { game_auth nope; } }",
     'invalid value "nope"'),
    # a key set that cannot sign serves guards, not endpoints
    ("game_jwt_key 1 @KEYS@/jwt-1.pub.pem; "
     "game_auth_email_key @KEYS@/email.key; "
     "game_auth_email_index_key @KEYS@/email-index.key; "
     "server { listen 127.0.0.1:2; location = /l { game_auth login; } }",
     '"game_jwt_key" with a private part'),
])
def test_bad_directives_are_refused(stack, http, message):
    rc, err = nginx_t(stack, http)
    assert rc != 0
    assert message in err, err
    # a secret never shows in an error message
    with open(os.path.join(stack.var, "keys", "email.key")) as f:
        assert f.read().strip() not in err
