
/*
 * Keeping a session and ending it:
 *
 *   POST /auth/refresh {refresh_token} -> a new access token and a new
 *        refresh token; the presented one is spent.  Presenting a spent
 *        token again means it was copied: the whole family is revoked
 *        (RFC 9700, 4.14.2), the thief's tokens and the owner's alike.
 *   POST /auth/logout  {refresh_token} -> the family is revoked.
 *
 * Rotation is one call of auth_refresh_rotate() (sql/002), which locks
 * the token row, so two refreshes racing with one token cannot both win.
 *
 * A family is a session: its access tokens carry its id ("sid"), and when
 * the family is revoked (logout, reuse) so are they, in every worker
 * (ngx_game_auth_revoke.c).  A refreshed access token keeps the session's
 * auth_time: the time of the login that started the family.
 */

#include "ngx_game_auth.h"


static void ngx_game_auth_refresh_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_auth_refresh_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_logout_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_auth_logout_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static char *ngx_game_auth_presented(ngx_game_auth_ctx_t *ctx, json_t *body);
static void ngx_game_auth_refresh_refused(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_logout_respond(ngx_game_auth_ctx_t *ctx);


/* the family of the presented token is the family of its successor; its
 * first token was issued by the login that started the session */
static ngx_game_pg_stmt_t  ngx_game_auth_refresh_rotate = {
    "game_auth_refresh",
    "SELECT r.outcome, r.player_id, t.family_id, "
    "       (SELECT floor(extract(epoch FROM min(f.issued_at)))::bigint "
    "          FROM refresh_tokens f WHERE f.family_id = t.family_id) "
    "  FROM auth_refresh_rotate($1::bytea, $2::bytea, "
    "                           $3::double precision) r "
    "  LEFT JOIN refresh_tokens t ON t.token_hash = $1::bytea",
    3
};

static ngx_game_pg_stmt_t  ngx_game_auth_logout_revoke = {
    "game_auth_logout",
    "WITH u AS ("
    "  UPDATE refresh_tokens SET revoked_at = now(), "
    "         revoked_reason = 'logout' "
    "   WHERE family_id = (SELECT family_id FROM refresh_tokens "
    "                       WHERE token_hash = $1::bytea) "
    "     AND revoked_at IS NULL "
    "  RETURNING family_id) "
    "SELECT DISTINCT family_id FROM u",
    1
};


ngx_int_t
ngx_game_auth_refresh_handler(ngx_http_request_t *r)
{
    return ngx_game_auth_post_json(r, ngx_game_auth_refresh_body);
}


ngx_int_t
ngx_game_auth_logout_handler(ngx_http_request_t *r)
{
    return ngx_game_auth_post_json(r, ngx_game_auth_logout_body);
}


/* the hash of the presented refresh token, or NULL with the answer sent */

static char *
ngx_game_auth_presented(ngx_game_auth_ctx_t *ctx, json_t *body)
{
    char                *hash;
    ngx_str_t            token;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_game_auth_field(r, body, "refresh_token", &token, 1, 128)
        != NGX_OK)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", ctx->errmsg));
        return NULL;
    }

    hash = ngx_game_auth_token_hash(r->pool, &token);
    if (hash == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    return hash;
}


static void
ngx_game_auth_refresh_body(ngx_http_request_t *r, json_t *body)
{
    char                 *old;
    ngx_game_pg_query_t  *q;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    old = ngx_game_auth_presented(ctx, body);
    if (old == NULL) {
        return;
    }

    if (ngx_game_auth_refresh_new(ctx) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_refresh_rotate,
                            ngx_game_auth_refresh_done);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = old;
    q->values[1] = ctx->refresh_hash;
    q->values[2] = ctx->ttl;

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_refresh_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    char                *outcome;
    ngx_http_request_t  *r = ctx->request;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(r, rc,
                                                          "the database"));
        return;
    }

    outcome = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "unknown";

    if (ngx_strcmp(outcome, "reused") == 0
        && PQgetlength(res, 0, 2) == GAME_UUID_LEN)
    {
        /* a security event, with no personal data but the player's id */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game auth: refresh token reuse for player %s, "
                      "session revoked", PQgetvalue(res, 0, 1));

        /* the thief's access tokens go with the family */
        ngx_game_auth_revoke(ctx, 's', PQgetvalue(res, 0, 2),
                             ngx_game_auth_refresh_refused);
        return;
    }

    if (ngx_strcmp(outcome, "ok") != 0) {
        ngx_game_auth_refresh_refused(ctx);
        return;
    }

    if (ngx_game_auth_session_from(ctx, res, 1, 2, 3) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_game_auth_finalize(ctx,
        ngx_game_auth_send_tokens(ctx, ctx->new_id, NGX_HTTP_OK));
}


/* one answer for unknown, spent, revoked and expired tokens */

static void
ngx_game_auth_refresh_refused(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_auth_finalize(ctx,
        ngx_game_http_send_error(ctx->request, NGX_HTTP_UNAUTHORIZED,
                                 "invalid_refresh_token",
                                 "the refresh token is invalid, expired or "
                                 "revoked; log in again"));
}


static void
ngx_game_auth_logout_body(ngx_http_request_t *r, json_t *body)
{
    char                 *hash;
    ngx_game_pg_query_t  *q;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    hash = ngx_game_auth_presented(ctx, body);
    if (hash == NULL) {
        return;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_logout_revoke,
                            ngx_game_auth_logout_done);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = hash;

    (void) ngx_game_auth_run(ctx, q);
}


/* logging out twice, or with an unknown token, is not an error */

static void
ngx_game_auth_logout_done(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(ctx->request, rc,
                                                          "the database"));
        return;
    }

    /* the session's access tokens stop working too (once is enough: a
     * second logout finds the family revoked and nothing to do) */
    if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == GAME_UUID_LEN) {
        ngx_game_auth_revoke(ctx, 's', PQgetvalue(res, 0, 0),
                             ngx_game_auth_logout_respond);
        return;
    }

    ngx_game_auth_logout_respond(ctx);
}


static void
ngx_game_auth_logout_respond(ngx_game_auth_ctx_t *ctx)
{
    static ngx_str_t  ok = ngx_string("{\"status\":\"logged_out\"}\n");

    ngx_game_auth_finalize(ctx,
                           ngx_game_http_send_text(ctx->request, NGX_HTTP_OK,
                                                   &ok));
}
