
/*
 * What a successful sign-in hands out: a short-lived ES256 access token
 * and an opaque refresh token (256 random bits) of which only a SHA-256
 * hash is stored.
 */

#include <openssl/rand.h>

#include "ngx_game_auth.h"


/* prepare ctx->refresh, its hash and its lifetime, before the INSERT */

ngx_int_t
ngx_game_auth_refresh_new(ngx_game_auth_ctx_t *ctx)
{
    u_char      raw[32];
    char       *hash;
    ngx_str_t   token, src;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    src.data = raw;
    src.len = sizeof(raw);
    token.data = ctx->refresh;
    ngx_encode_base64url(&token, &src);
    ctx->refresh[token.len] = '\0';
    ngx_explicit_memzero(raw, sizeof(raw));

    hash = ngx_game_auth_token_hash(ctx->request->pool, &token);
    if (hash == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) ctx->refresh_hash, (u_char *) hash,
                sizeof(ctx->refresh_hash));

    ngx_sprintf((u_char *) ctx->ttl, "%T%Z", ctx->amcf->refresh_ttl);

    return NGX_OK;
}


ngx_int_t
ngx_game_auth_send_tokens(ngx_game_auth_ctx_t *ctx, const char *player_id,
    ngx_uint_t status)
{
    json_t              *body;
    ngx_int_t            rc;
    ngx_str_t            access;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_game_auth_sign(ctx, player_id, &access) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "game auth: signing an access token failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = json_pack("{s:s%,s:s,s:I,s:s,s:s}",
                     "access_token", access.data, access.len,
                     "token_type", "Bearer",
                     "expires_in", (json_int_t) ctx->amcf->access_ttl,
                     "refresh_token", (char *) ctx->refresh,
                     "player_id", player_id);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* tokens must not linger in caches (RFC 6749, 5.1) */
    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    rc = ngx_game_http_send_json(r, status, body);
    json_decref(body);

    return rc;
}


/*
 * The session a statement just opened or continued: the player (column
 * "player"), the refresh-token family (column "family") and when the
 * player last authenticated (column "auth_time", seconds): the issue time
 * of the family's first token, by PostgreSQL's clock, whether it was just
 * made (login, device) or is being continued (refresh).
 */

ngx_int_t
ngx_game_auth_session_from(ngx_game_auth_ctx_t *ctx, PGresult *res,
    int player, int family, int auth_time)
{
    if (PQntuples(res) != 1
        || PQgetlength(res, 0, player) != GAME_UUID_LEN
        || PQgetlength(res, 0, family) != GAME_UUID_LEN
        || PQgetisnull(res, 0, auth_time))
    {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->new_id, PQgetvalue(res, 0, player), GAME_UUID_LEN + 1);
    ngx_memcpy(ctx->session, PQgetvalue(res, 0, family), GAME_UUID_LEN + 1);

    ctx->issued_auth_time = ngx_atotm((u_char *) PQgetvalue(res, 0, auth_time),
                                      PQgetlength(res, 0, auth_time));

    return ctx->issued_auth_time == NGX_ERROR ? NGX_ERROR : NGX_OK;
}
