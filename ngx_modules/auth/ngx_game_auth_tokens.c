
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
    ngx_str_t   token;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    ctx->refresh[game_auth_b64url_encode((char *) ctx->refresh, raw,
                                         sizeof(raw))] = '\0';
    ngx_explicit_memzero(raw, sizeof(raw));

    token.data = ctx->refresh;
    token.len = NGX_GAME_AUTH_REFRESH_LEN;

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

    if (ngx_game_auth_sign(ctx->amcf, r->pool, player_id, &access) != NGX_OK) {
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
