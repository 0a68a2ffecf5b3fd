
/*
 * TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of
 * drift either way), with liboath.
 *
 *   POST /auth/mfa/totp          a new secret and its otpauth:// URI; not
 *                                active until confirmed; needs a recent
 *                                login (game_auth_recent_auth)
 *   POST /auth/mfa/totp/confirm  {otp}: proves the authenticator works and
 *                                turns the factor on
 *
 * Every accepted code's step is stored (totp_last_step) and a code for
 * that step or an earlier one is refused: each code works once.  The
 * secret is sealed like the email, bound to the player and its purpose.
 */

#include <liboath/oath.h>
#include <openssl/rand.h>

#include "ngx_game_auth.h"


#define NGX_GAME_AUTH_TOTP_STEP    30
#define NGX_GAME_AUTH_TOTP_SECRET  20


static void ngx_game_auth_totp_stored(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_totp_confirm_body(ngx_http_request_t *r,
    json_t *body);
static void ngx_game_auth_totp_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_totp_enabled(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);


static ngx_game_pg_stmt_t  ngx_game_auth_totp_store = {
    "game_auth_totp_store",
    "UPDATE players SET totp_secret_ciphertext = $2::bytea "
    " WHERE id = $1::uuid AND deleted_at IS NULL AND NOT totp_enabled",
    2
};

static ngx_game_pg_stmt_t  ngx_game_auth_totp_load = {
    "game_auth_totp_load",
    "SELECT encode(totp_secret_ciphertext, 'hex'), totp_enabled, "
    "       totp_last_step "
    "  FROM players WHERE id = $1::uuid AND deleted_at IS NULL",
    1
};

static ngx_game_pg_stmt_t  ngx_game_auth_totp_enable = {
    "game_auth_totp_enable",
    "UPDATE players SET totp_enabled = true, totp_last_step = $2::bigint "
    " WHERE id = $1::uuid AND deleted_at IS NULL AND NOT totp_enabled "
    "   AND totp_secret_ciphertext IS NOT NULL",
    2
};


typedef struct {
    u_char                      secret[NGX_GAME_AUTH_TOTP_SECRET];
} ngx_game_auth_totp_t;


ngx_int_t
ngx_game_auth_totp_handler(ngx_http_request_t *r)
{
    char                  *sealed;
    ngx_game_pg_query_t   *q;
    ngx_game_auth_ctx_t   *ctx;
    ngx_game_auth_totp_t  *t;

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed", "use POST");
    }

    ctx = ngx_game_auth_ctx(r);
    t = ngx_palloc(r->pool, sizeof(ngx_game_auth_totp_t));
    if (ctx == NULL || t == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* whoever holds a stolen token must not get to set the second factor */
    if (!ngx_game_auth_is_recent(ctx)) {
        return ngx_game_auth_send_stale(ctx);
    }

    if (RAND_bytes(t->secret, sizeof(t->secret)) != 1
        || ngx_game_auth_secret_seal(ctx->amcf, r->pool, "totp",
                                     (char *) ctx->player_id, t->secret,
                                     sizeof(t->secret), &sealed) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_totp_store,
                            ngx_game_auth_totp_stored);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the secret travels with the query to the answer */
    ctx->totp_secret_ct = (char *) t;

    q->values[0] = (char *) ctx->player_id;
    q->values[1] = sealed;

    r->main->count++;
    (void) ngx_game_auth_run(ctx, q);

    return NGX_DONE;
}


static void
ngx_game_auth_totp_stored(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    u_char                uri[512], *last;
    char                 *b32;
    size_t                b32len;
    json_t               *body;
    ngx_int_t             status;
    ngx_game_auth_totp_t *t;
    ngx_http_request_t   *r = ctx->request;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(r, rc,
                                                          "the database"));
        return;
    }

    if (ngx_atoi((u_char *) PQcmdTuples(res), ngx_strlen(PQcmdTuples(res)))
        != 1)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_CONFLICT,
                                     "mfa_already_enabled",
                                     "two-factor authentication is already "
                                     "on for this account"));
        return;
    }

    t = (ngx_game_auth_totp_t *) ctx->totp_secret_ct;

    if (oath_base32_encode((char *) t->secret, sizeof(t->secret), &b32,
                           &b32len) != OATH_OK)
    {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* base32 padding is not wanted in URIs; authenticator apps skip it */
    while (b32len && b32[b32len - 1] == '=') {
        b32[--b32len] = '\0';
    }

    last = ngx_snprintf(uri, sizeof(uri) - 1,
                        "otpauth://totp/%V:%s?secret=%s&issuer=%V"
                        "&algorithm=SHA1&digits=6&period=30",
                        &ctx->amcf->totp_issuer, ctx->player_id, b32,
                        &ctx->amcf->totp_issuer);
    *last = '\0';

    body = json_pack("{s:s,s:s}", "secret", b32, "otpauth_uri", (char *) uri);
    free(b32);

    if (body == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = ngx_game_http_send_json(r, NGX_HTTP_OK, body);
    json_decref(body);

    ngx_game_auth_finalize(ctx, status);
}


ngx_int_t
ngx_game_auth_totp_confirm_handler(ngx_http_request_t *r)
{
    return ngx_game_auth_post_json(r, ngx_game_auth_totp_confirm_body);
}


static void
ngx_game_auth_totp_confirm_body(ngx_http_request_t *r, json_t *body)
{
    ngx_game_pg_query_t  *q;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    if (ngx_game_auth_field(r, body, "otp", &ctx->otp, 1, 10) != NGX_OK) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", ctx->errmsg));
        return;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_totp_load,
                            ngx_game_auth_totp_loaded);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = (char *) ctx->player_id;

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_totp_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    ngx_http_request_t  *r = ctx->request;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(r, rc,
                                                          "the database"));
        return;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)
        || PQgetvalue(res, 0, 1)[0] == 't')
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_CONFLICT, "mfa_not_pending",
                                     "start with POST /auth/mfa/totp; it "
                                     "is not pending confirmation"));
        return;
    }

    ctx->totp_secret_ct = (char *) ngx_pnalloc(r->pool,
                                               PQgetlength(res, 0, 0) + 1);
    if (ctx->totp_secret_ct == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(ctx->totp_secret_ct, PQgetvalue(res, 0, 0),
               PQgetlength(res, 0, 0) + 1);

    ctx->totp_last_step = PQgetisnull(res, 0, 2)
                          ? -1 : ngx_atoof((u_char *) PQgetvalue(res, 0, 2),
                                           PQgetlength(res, 0, 2));

    if (ngx_game_auth_totp_check(ctx, (char *) ctx->player_id) != NGX_OK) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_GAME_AUTH_HTTP_UNPROCESSABLE,
                                     "invalid_otp",
                                     "the one-time code is wrong or "
                                     "expired"));
        return;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_totp_enable,
                            ngx_game_auth_totp_enabled);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = (char *) ctx->player_id;
    q->values[1] = ctx->totp_step;

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_totp_enabled(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    static ngx_str_t  on = ngx_string("{\"mfa_enabled\":true}\n");

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(ctx->request, rc,
                                                          "the database"));
        return;
    }

    ngx_game_auth_finalize(ctx,
                           ngx_game_http_send_text(ctx->request, NGX_HTTP_OK,
                                                   &on));
}


/*
 * Check ctx->otp against the sealed secret in ctx->totp_secret_ct; on
 * success ctx->totp_step holds the step to claim, which the caller stores
 * with a guard against an equal or later claimed step.
 */

ngx_int_t
ngx_game_auth_totp_check(ngx_game_auth_ctx_t *ctx, const char *id)
{
    int         rc, pos;
    time_t      now;
    int64_t     step;
    ngx_str_t   secret;
    ngx_uint_t  i;

    if (ctx->otp.len != 6 || ctx->totp_secret_ct == NULL) {
        return NGX_DECLINED;
    }

    for (i = 0; i < 6; i++) {
        if (ctx->otp.data[i] < '0' || ctx->otp.data[i] > '9') {
            return NGX_DECLINED;
        }
    }

    if (ngx_game_auth_secret_open(ctx->amcf, ctx->request->pool, "totp", id,
                                  ctx->totp_secret_ct, &secret) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "game auth: TOTP secret of %s does not decrypt", id);
        return NGX_DECLINED;
    }

    now = ngx_time();

    rc = oath_totp_validate2((char *) secret.data, secret.len, now,
                             NGX_GAME_AUTH_TOTP_STEP, 0, 1, &pos,
                             (char *) ctx->otp.data);

    ngx_explicit_memzero(secret.data, secret.len);

    if (rc < 0) {
        return NGX_DECLINED;
    }

    step = now / NGX_GAME_AUTH_TOTP_STEP + pos;

    if (step <= ctx->totp_last_step) {
        return NGX_DECLINED;        /* this code, or a later one, was used */
    }

    ngx_sprintf((u_char *) ctx->totp_step, "%L%Z", step);

    return NGX_OK;
}
