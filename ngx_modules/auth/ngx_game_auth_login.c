
/*
 * POST /auth/login {login, password, otp?}
 *
 *   look the account up (PostgreSQL) -> count the attempt, or 429 when
 *   locked (Redis) -> Argon2id verify (thread pool) -> TOTP -> check the
 *   lock again and forget the attempts (Redis) -> store a refresh token
 *   and stamp last_login (one statement) -> tokens
 *
 * An unknown login is verified against a dummy hash and fails through the
 * same path as a wrong password: same status, same body, same work.
 */

#include "ngx_game_auth.h"


static void ngx_game_auth_login_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_auth_login_lookup(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_login_found(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_login_reserved(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_login_verified(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_login_issue_tokens(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_login_issued(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);


static ngx_game_pg_stmt_t  ngx_game_auth_login_find = {
    "game_auth_login_find",
    "SELECT id, password_hash, totp_enabled, "
    "       encode(totp_secret_ciphertext, 'hex'), totp_last_step "
    "  FROM players "
    " WHERE deleted_at IS NULL "
    "   AND (lower(username) = lower($1) OR email_index = $2::bytea)",
    2
};

/*
 * The TOTP step is claimed in the same statement that opens the session:
 * two logins racing with one code cannot both succeed.
 */
static ngx_game_pg_stmt_t  ngx_game_auth_login_issue = {
    "game_auth_login_issue",
    "WITH p AS ("
    "  UPDATE players SET last_login = now(), "
    "         password_hash = coalesce($4, password_hash), "
    "         totp_last_step = coalesce($5::bigint, totp_last_step) "
    "   WHERE id = $1::uuid AND deleted_at IS NULL "
    "     AND ($5::bigint IS NULL OR totp_last_step IS NULL "
    "          OR totp_last_step < $5::bigint) "
    "  RETURNING id) "
    "INSERT INTO refresh_tokens (player_id, family_id, token_hash, expires_at) "
    "SELECT id, gen_random_uuid(), $2::bytea, "
    "       now() + make_interval(secs => $3::double precision) FROM p "
    "RETURNING player_id, family_id, "
    "          floor(extract(epoch FROM issued_at))::bigint",
    5
};


ngx_int_t
ngx_game_auth_login_handler(ngx_http_request_t *r)
{
    return ngx_game_auth_post_json(r, ngx_game_auth_login_body);
}


static void
ngx_game_auth_login_body(ngx_http_request_t *r, json_t *body)
{
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    if (ngx_game_auth_field(r, body, "login", &ctx->login, 1, 254) != NGX_OK
        || ngx_game_auth_field(r, body, "password", &ctx->password, 1,
                               NGX_GAME_AUTH_PASSWORD_MAX) != NGX_OK
        || ngx_game_auth_field(r, body, "otp", &ctx->otp, 0, 10) != NGX_OK)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", ctx->errmsg));
        return;
    }

    /* names and addresses are case-insensitive */
    ngx_game_auth_lower(&ctx->login);

    ngx_game_auth_login_lookup(ctx);
}


static void
ngx_game_auth_login_lookup(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_pg_query_t  *q;

    q = ngx_game_auth_query(ctx, &ngx_game_auth_login_find,
                            ngx_game_auth_login_found);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_strlchr(ctx->login.data, ctx->login.data + ctx->login.len, '@')) {
        ctx->email_ix = ngx_game_auth_blind_index(ctx->amcf,
                                                  ctx->request->pool, "email",
                                                  &ctx->login);
        if (ctx->email_ix == NULL) {
            ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        q->values[1] = ctx->email_ix;

    } else {
        q->values[0] = (char *) ctx->login.data;
    }

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_login_found(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    size_t               len;
    char                *copy;
    ngx_http_request_t  *r = ctx->request;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(r, rc,
                                                          "the database"));
        return;
    }

    ctx->stored_hash = ctx->amcf->dummy_hash;

    /* accounts without a password (guests) cannot log in with one */
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
        ctx->found = 1;
        ngx_cpystrn((u_char *) ctx->new_id, (u_char *) PQgetvalue(res, 0, 0),
                    sizeof(ctx->new_id));

        len = PQgetlength(res, 0, 1);
        copy = ngx_pnalloc(r->pool, len + 1);
        if (copy == NULL) {
            ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(copy, PQgetvalue(res, 0, 1), len + 1);
        ctx->stored_hash = copy;

        ctx->totp_enabled = (PQgetvalue(res, 0, 2)[0] == 't');

        if (ctx->totp_enabled) {
            len = PQgetlength(res, 0, 3);
            ctx->totp_secret_ct = ngx_pnalloc(r->pool, len + 1);
            if (ctx->totp_secret_ct == NULL) {
                ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_memcpy(ctx->totp_secret_ct, PQgetvalue(res, 0, 3), len + 1);
            ctx->totp_last_step = PQgetisnull(res, 0, 4)
                                  ? -1 : ngx_atoof((u_char *)
                                                   PQgetvalue(res, 0, 4),
                                                   PQgetlength(res, 0, 4));
        }
    }

    /* the attempt counts before any hashing (ngx_game_auth_backoff.c) */
    ngx_game_auth_backoff_reserve(ctx, ngx_game_auth_login_reserved);
}


static void
ngx_game_auth_login_reserved(ngx_game_auth_ctx_t *ctx)
{
    if (ngx_game_auth_hash(ctx, ngx_game_auth_login_verified) != NGX_OK) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_outcome(ctx->request, NGX_GAME_UNAVAILABLE,
                                       "the password service"));
    }
}


static void
ngx_game_auth_login_verified(ngx_game_auth_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!ctx->found || !ctx->hash_ok) {
        ngx_game_auth_backoff_fail(ctx);
        return;
    }

    if (ctx->totp_enabled) {
        if (ctx->otp.len == 0) {
            ngx_game_auth_finalize(ctx,
                ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "mfa_required",
                                         "this account needs a one-time "
                                         "code in \"otp\""));
            return;
        }

        if (ngx_game_auth_totp_check(ctx, ctx->new_id) != NGX_OK) {
            ngx_game_auth_backoff_fail(ctx);
            return;
        }
    }

    ngx_game_auth_backoff_succeed(ctx, ngx_game_auth_login_issue_tokens);
}


static void
ngx_game_auth_login_issue_tokens(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_pg_query_t  *q;

    if (ngx_game_auth_refresh_new(ctx) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_login_issue,
                            ngx_game_auth_login_issued);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = ctx->new_id;
    q->values[1] = ctx->refresh_hash;
    q->values[2] = ctx->ttl;
    q->values[3] = ctx->rehashed ? ctx->hash : NULL;
    q->values[4] = ctx->totp_step[0] ? ctx->totp_step : NULL;

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_login_issued(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(ctx->request, rc,
                                                          "the database"));
        return;
    }

    if (PQntuples(res) != 1) {
        /* erased meanwhile, or the one-time code was just used */
        ngx_game_auth_backoff_fail(ctx);
        return;
    }

    /* a password (and the second factor): an authentication, now */
    if (ngx_game_auth_session_from(ctx, res, 0, 1, 2) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_game_auth_finalize(ctx,
        ngx_game_auth_send_tokens(ctx, ctx->new_id, NGX_HTTP_OK));
}
