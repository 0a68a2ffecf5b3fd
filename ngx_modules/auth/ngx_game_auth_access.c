
/*
 * Access tokens: issued, verified, remembered.
 *
 * They are ES256 JWTs (typ "at+jwt", RFC 9068) signed with the core's key
 * set (game_jwt_key), which also serves the JWKS.  Claims:
 *
 *   iss aud sub iat nbf exp jti   as RFC 9068 has them
 *   sid        the session: the refresh-token family the token came from,
 *              so that logging out revokes the session's access tokens
 *   auth_time  when the player last proved who they are (a password, with
 *              the second factor when on; a device id for a guest): a
 *              token refreshed later keeps it, so sensitive changes can
 *              ask for a recent one without a lookup
 *
 * Verifying costs an ECDSA verification, far more than the rest of a
 * guarded request, and a worker sees the same token on every request of
 * a session.  So each worker remembers tokens it has fully verified, by
 * their SHA-256, in a set-associative table of game_auth_jwt_cache
 * entries; a hit re-checks only the times (and, like a miss, the
 * revocations).  A reload starts new workers with empty tables, so a key
 * removed from the configuration stops verifying at once.
 */

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ngx_game_auth.h"


#define NGX_GAME_AUTH_CACHE_WAYS  4


typedef struct {
    u_char                      digest[SHA256_DIGEST_LENGTH];
    time_t                      exp;
    time_t                      nbf;
    time_t                      iat;
    time_t                      auth_time;
    ngx_uint_t                  stamp;      /* 0: free; else insertion order */
    u_char                      sub[GAME_UUID_LEN];
    u_char                      sid[GAME_UUID_LEN + 1];
} ngx_game_auth_verified_t;


struct ngx_game_auth_cache_s {
    ngx_game_auth_verified_t   *entries;
    ngx_uint_t                  mask;       /* sets - 1 */
    ngx_uint_t                  stamp;
};


static ngx_int_t ngx_game_auth_claims(ngx_game_auth_main_conf_t *amcf,
    json_t *claims, ngx_game_auth_verified_t *v);
static ngx_int_t ngx_game_auth_claim_time(json_t *claims, const char *name,
    time_t *t);
static ngx_int_t ngx_game_auth_claim_str(json_t *claims, const char *name,
    ngx_str_t *s);
static ngx_int_t ngx_game_auth_times_valid(ngx_game_auth_main_conf_t *amcf,
    ngx_game_auth_verified_t *v);
static void ngx_game_auth_cache_cleanup(void *data);


char *
ngx_game_auth_keys_init(ngx_conf_t *cf, ngx_game_auth_main_conf_t *amcf)
{
    amcf->keys = ngx_game_jwt_keys(cf);

    return amcf->keys ? NGX_CONF_OK : NGX_CONF_ERROR;
}


ngx_int_t
ngx_game_auth_sign(ngx_game_auth_ctx_t *ctx, const char *sub, ngx_str_t *token)
{
    u_char                      jti[16], jti_text[24];
    time_t                      now;
    json_t                     *claims;
    ngx_int_t                   rc;
    ngx_str_t                   src, text;
    ngx_game_auth_main_conf_t  *amcf = ctx->amcf;

    if (RAND_bytes(jti, sizeof(jti)) != 1) {
        return NGX_ERROR;
    }

    src.data = jti;
    src.len = sizeof(jti);
    text.data = jti_text;
    ngx_encode_base64url(&text, &src);

    now = ngx_time();

    claims = json_pack("{s:s%,s:s%,s:s,s:I,s:I,s:I,s:s%,s:I}",
                       "iss", amcf->issuer.data, amcf->issuer.len,
                       "aud", amcf->audience.data, amcf->audience.len,
                       "sub", sub,
                       "iat", (json_int_t) now,
                       "nbf", (json_int_t) now,
                       "exp", (json_int_t) (now + amcf->access_ttl),
                       "jti", text.data, text.len,
                       "auth_time", (json_int_t) ctx->issued_auth_time);
    if (claims == NULL) {
        return NGX_ERROR;
    }

    if (ctx->session[0]
        && json_object_set_new(claims, "sid", json_string(ctx->session)) != 0)
    {
        json_decref(claims);
        return NGX_ERROR;
    }

    rc = ngx_game_jwt_sign(amcf->keys, NGX_GAME_JWT_ACCESS, claims,
                           ctx->request->pool, token);
    json_decref(claims);

    return rc;
}


/* per worker: the table of verified tokens, sized by game_auth_jwt_cache */

ngx_int_t
ngx_game_auth_cache_init(ngx_cycle_t *cycle, ngx_game_auth_main_conf_t *amcf)
{
    ngx_uint_t              sets;
    ngx_pool_cleanup_t     *cln;
    ngx_game_auth_cache_t  *cache;

    if (amcf->cache_size == 0) {
        return NGX_OK;
    }

    /* a power of two of sets, at least the entries asked for */
    for (sets = 1; sets * NGX_GAME_AUTH_CACHE_WAYS < amcf->cache_size;
         sets <<= 1)
    { /* void */ }

    cache = ngx_pcalloc(cycle->pool, sizeof(ngx_game_auth_cache_t));
    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cache == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    /* calloc: pages the table never reaches are never touched */
    cache->entries = calloc(sets * NGX_GAME_AUTH_CACHE_WAYS,
                            sizeof(ngx_game_auth_verified_t));
    if (cache->entries == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "game auth: no memory for %ui cached tokens "
                      "(game_auth_jwt_cache)", amcf->cache_size);
        return NGX_ERROR;
    }

    cache->mask = sets - 1;
    cln->handler = ngx_game_auth_cache_cleanup;
    cln->data = cache;
    amcf->cache = cache;

    return NGX_OK;
}


static void
ngx_game_auth_cache_cleanup(void *data)
{
    ngx_game_auth_cache_t  *cache = data;

    free(cache->entries);
}


/* the set of a digest, whose first bytes are as random as any */

static ngx_game_auth_verified_t *
ngx_game_auth_cache_set(ngx_game_auth_cache_t *cache, u_char *digest)
{
    uint32_t  h;

    ngx_memcpy(&h, digest, sizeof(h));

    return &cache->entries[(h & cache->mask) * NGX_GAME_AUTH_CACHE_WAYS];
}


/* a free way, else an expired one, else the oldest */

static ngx_game_auth_verified_t *
ngx_game_auth_cache_victim(ngx_game_auth_verified_t *set, time_t now)
{
    ngx_uint_t                 i;
    ngx_game_auth_verified_t  *v;

    v = &set[0];

    for (i = 0; i < NGX_GAME_AUTH_CACHE_WAYS; i++) {
        if (set[i].stamp == 0 || set[i].exp < now) {
            return &set[i];
        }

        if (set[i].stamp < v->stamp) {
            v = &set[i];
        }
    }

    return v;
}


/*
 * NGX_OK with who the token names in ctx (player_id, sid, iat,
 * auth_time), or NGX_DECLINED for any token we would not have issued,
 * that is not valid now, or whose session was revoked.
 */

ngx_int_t
ngx_game_auth_verify(ngx_game_auth_main_conf_t *amcf, u_char *token,
    size_t len, ngx_game_auth_ctx_t *ctx)
{
    ngx_game_access_t  a;

    if (ngx_game_auth_check(amcf, token, len, &a) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_memcpy(ctx->player_id, a.player_id, sizeof(ctx->player_id));
    ngx_memcpy(ctx->sid, a.sid, sizeof(ctx->sid));
    ctx->iat = a.iat;
    ctx->auth_time = a.auth_time;

    return NGX_OK;
}


/*
 * The check itself, the guard's and the one the core lends to other
 * services (ngx_game_access_verify(): a WebSocket's token): "data" is the
 * auth module's main configuration.
 */

ngx_int_t
ngx_game_auth_check(void *data, u_char *token, size_t len,
    ngx_game_access_t *a)
{
    ngx_game_auth_main_conf_t *amcf = data;

    u_char                     digest[SHA256_DIGEST_LENGTH];
    json_t                    *claims;
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_game_auth_verified_t  *set, *v, fresh;

    v = NULL;
    set = NULL;

    if (amcf->cache) {
        SHA256(token, len, digest);
        set = ngx_game_auth_cache_set(amcf->cache, digest);

        for (i = 0; i < NGX_GAME_AUTH_CACHE_WAYS; i++) {
            if (set[i].stamp
                && ngx_memcmp(set[i].digest, digest, sizeof(digest)) == 0)
            {
                v = &set[i];
                break;
            }
        }
    }

    if (v == NULL) {
        rc = ngx_game_jwt_verify(amcf->keys, NGX_GAME_JWT_ACCESS, token, len,
                                 &claims);
        if (rc != NGX_OK) {
            return NGX_DECLINED;
        }

        ngx_memzero(&fresh, sizeof(fresh));
        rc = ngx_game_auth_claims(amcf, claims, &fresh);
        json_decref(claims);

        if (rc != NGX_OK) {
            return NGX_DECLINED;
        }

        v = &fresh;

        if (set) {
            v = ngx_game_auth_cache_victim(set, ngx_time());
            *v = fresh;
            ngx_memcpy(v->digest, digest, sizeof(digest));
            v->stamp = ++amcf->cache->stamp;
        }
    }

    if (!ngx_game_auth_times_valid(amcf, v)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(a->player_id, v->sub, GAME_UUID_LEN);
    a->player_id[GAME_UUID_LEN] = '\0';
    ngx_memcpy(a->sid, v->sid, sizeof(a->sid));
    a->iat = v->iat;
    a->exp = v->exp + amcf->leeway;
    a->auth_time = v->auth_time;

    if (ngx_game_auth_revoked(amcf, a)) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the claims of a token whose signature holds: ours, for us, well-formed */

static ngx_int_t
ngx_game_auth_claims(ngx_game_auth_main_conf_t *amcf, json_t *claims,
    ngx_game_auth_verified_t *v)
{
    ngx_str_t  iss, aud, sub, sid;

    if (ngx_game_auth_claim_str(claims, "iss", &iss) != NGX_OK
        || iss.len != amcf->issuer.len
        || ngx_memcmp(iss.data, amcf->issuer.data, iss.len) != 0
        || ngx_game_auth_claim_str(claims, "aud", &aud) != NGX_OK
        || aud.len != amcf->audience.len
        || ngx_memcmp(aud.data, amcf->audience.data, aud.len) != 0
        || ngx_game_auth_claim_str(claims, "sub", &sub) != NGX_OK
        || !game_uuid_valid(sub.data, sub.len)
        || ngx_game_auth_claim_time(claims, "exp", &v->exp) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(v->sub, sub.data, GAME_UUID_LEN);

    /* optional, but when present they must make sense */
    v->nbf = 0;
    v->iat = 0;

    if (ngx_game_auth_claim_time(claims, "nbf", &v->nbf) == NGX_ERROR
        || ngx_game_auth_claim_time(claims, "iat", &v->iat) == NGX_ERROR
        || ngx_game_auth_claim_time(claims, "auth_time", &v->auth_time)
           == NGX_ERROR)
    {
        return NGX_DECLINED;
    }

    switch (ngx_game_auth_claim_str(claims, "sid", &sid)) {

    case NGX_OK:
        if (!game_uuid_valid(sid.data, sid.len)) {
            return NGX_DECLINED;
        }

        ngx_memcpy(v->sid, sid.data, GAME_UUID_LEN);
        v->sid[GAME_UUID_LEN] = '\0';
        break;

    case NGX_DECLINED:
        break;

    default:
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* NGX_OK, NGX_DECLINED when absent, NGX_ERROR when of another type */

static ngx_int_t
ngx_game_auth_claim(json_t *claims, const char *name, json_type type,
    json_t **v)
{
    *v = json_object_get(claims, name);

    if (*v == NULL) {
        return NGX_DECLINED;
    }

    return json_typeof(*v) == type ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_game_auth_claim_time(json_t *claims, const char *name, time_t *t)
{
    json_t     *v;
    ngx_int_t   rc;

    rc = ngx_game_auth_claim(claims, name, JSON_INTEGER, &v);
    if (rc == NGX_OK) {
        *t = (time_t) json_integer_value(v);
    }

    return rc;
}


static ngx_int_t
ngx_game_auth_claim_str(json_t *claims, const char *name, ngx_str_t *s)
{
    json_t     *v;
    ngx_int_t   rc;

    rc = ngx_game_auth_claim(claims, name, JSON_STRING, &v);
    if (rc == NGX_OK) {
        s->data = (u_char *) json_string_value(v);
        s->len = json_string_length(v);
    }

    return rc;
}


/* "issued in the future" counts like "not yet valid": within the leeway */

static ngx_int_t
ngx_game_auth_times_valid(ngx_game_auth_main_conf_t *amcf,
    ngx_game_auth_verified_t *v)
{
    time_t  now;

    now = ngx_time();

    return now <= v->exp + amcf->leeway
           && now + amcf->leeway >= v->nbf
           && now + amcf->leeway >= v->iat;
}


/*
 * Sensitive changes (a second factor, credentials, erasure) want the
 * player to have proved who they are within game_auth_recent_auth, not
 * merely to hold a token.
 */

ngx_uint_t
ngx_game_auth_is_recent(ngx_game_auth_ctx_t *ctx)
{
    return ctx->auth_time + ctx->amcf->recent_auth >= ngx_time();
}


/* the step-up challenge of RFC 9470: log in again, then retry */

ngx_int_t
ngx_game_auth_send_stale(ngx_game_auth_ctx_t *ctx)
{
    u_char              *p;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r = ctx->request;

    h = ngx_list_push(&r->headers_out.headers);
    p = ngx_pnalloc(r->pool, 64 + NGX_TIME_T_LEN);
    if (h == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "Bearer error=\"insufficient_user_"
                               "authentication\", max_age=%T",
                               ctx->amcf->recent_auth)
                   - p;

    return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                    "insufficient_user_authentication",
                                    "this change needs a recent login: log "
                                    "in again, then retry");
}


/* GET /.well-known/jwks.json: what independent verifiers need */

ngx_int_t
ngx_game_auth_jwks_handler(ngx_http_request_t *r)
{
    ngx_game_auth_main_conf_t  *amcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed", "use GET");
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_game_auth_module);

    return ngx_game_http_send_text(r, NGX_HTTP_OK, &amcf->keys->jwks);
}
