
/*
 * ES256 keys: loading, the JWKS document, signing access tokens and
 * verifying them.
 *
 * Every key listed with game_auth_jwt_key verifies; the last one that has
 * a private part signs.  Rotation is therefore: add the new key at the
 * end, reload, and drop the old one once the access TTL has passed.
 *
 * Signing and verification use OpenSSL directly.  Verification is on the
 * path of every guarded request, so it is shaped to allocate nothing of
 * its own: the header must be byte-identical to the one we sign with (that
 * pins alg and typ and names a known kid in one comparison, RFC 8725; its
 * members are in sorted order, as most JWT libraries write them), the
 * signature is turned into DER on the stack, and the claims are read in
 * place after the signature has been checked.
 */

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/core_names.h>

#include "ngx_game_auth.h"


#define NGX_GAME_AUTH_PAYLOAD_MAX  1024

/*
 * A worker sees the same token on every request of a session, and an
 * ECDSA verification costs far more than the rest of a guarded request.
 * So each worker remembers tokens it has fully verified, by their SHA-256,
 * in a small direct-mapped table; a hit re-checks only the time claims.
 * A reload starts new workers with empty tables, so removing a key takes
 * effect at once.
 */
#define NGX_GAME_AUTH_VERIFIED     1024        /* entries, a power of two */


typedef struct {
    u_char                      digest[32];
    int64_t                     exp;
    int64_t                     nbf;
    u_char                      sub[GAME_AUTH_UUID_LEN];
    unsigned                    used:1;
} ngx_game_auth_verified_t;


static ngx_game_auth_verified_t  *ngx_game_auth_verified;


static void ngx_game_auth_key_cleanup(void *data);
static ngx_int_t ngx_game_auth_times_valid(ngx_game_auth_main_conf_t *amcf,
    int64_t exp, int64_t nbf);


char *
ngx_game_auth_key_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_auth_main_conf_t  *amcf = conf;

    u_char               *p;
    BIO                  *bio;
    char                  group[32];
    size_t                n;
    EVP_PKEY             *pkey;
    ngx_str_t            *value, file;
    ngx_uint_t            i;
    ngx_pool_cleanup_t   *cln;
    ngx_game_auth_key_t  *key, *keys;
    u_char                hdr[128];

    value = cf->args->elts;

    for (i = 0; i < value[1].len; i++) {
        p = &value[1].data[i];
        if (!(ngx_game_auth_isalnum(*p) || *p == '-' || *p == '_' || *p == '.')) {
            break;
        }
    }

    if (value[1].len == 0 || value[1].len > 64 || i != value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key id \"%V\" in \"%V\" directive: use "
                           "1 to 64 of [A-Za-z0-9._-]", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    keys = amcf->keys.elts;
    for (i = 0; i < amcf->keys.nelts; i++) {
        if (keys[i].kid.len == value[1].len
            && ngx_strncmp(keys[i].kid.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate key id \"%V\" in \"%V\" directive",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    file = value[2];
    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    key = ngx_array_push(&amcf->keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(key, sizeof(ngx_game_auth_key_t));
    key->kid = value[1];

    bio = BIO_new_file((char *) file.data, "r");
    if (bio == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot open key file \"%V\" in \"%V\" directive",
                           &file, &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* a private key signs and verifies; a public one only verifies */
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (pkey) {
        key->can_sign = 1;

    } else {
        (void) BIO_reset(bio);
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }

    BIO_free(bio);

    if (pkey == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no PEM key in \"%V\" in \"%V\" directive",
                           &file, &cmd->name);
        return NGX_CONF_ERROR;
    }

    key->pkey = pkey;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_game_auth_key_cleanup;
    cln->data = key;

    if (!EVP_PKEY_is_a(pkey, "EC")
        || !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &n)
        || ngx_strcmp(group, "prime256v1") != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key \"%V\" in \"%V\" directive is not an EC "
                           "P-256 key (ES256)", &file, &cmd->name);
        return NGX_CONF_ERROR;
    }

    key->verify = EVP_PKEY_CTX_new(pkey, NULL);
    if (key->verify == NULL || EVP_PKEY_verify_init(key->verify) <= 0) {
        return NGX_CONF_ERROR;
    }

    p = ngx_snprintf(hdr, sizeof(hdr),
                     "{\"alg\":\"ES256\",\"kid\":\"%V\",\"typ\":\"at+jwt\"}",
                     &key->kid);

    key->header.data = ngx_pnalloc(cf->pool, ngx_base64_encoded_length(p - hdr));
    if (key->header.data == NULL) {
        return NGX_CONF_ERROR;
    }

    key->header.len = game_auth_b64url_encode((char *) key->header.data, hdr,
                                              p - hdr);

    return NGX_CONF_OK;
}


static void
ngx_game_auth_key_cleanup(void *data)
{
    ngx_game_auth_key_t  *key = data;

    if (key->verify) {
        EVP_PKEY_CTX_free(key->verify);
    }

    EVP_PKEY_free(key->pkey);
}


/* the JWKS document is fixed by the configuration: built once */

char *
ngx_game_auth_keys_init(ngx_conf_t *cf, ngx_game_auth_main_conf_t *amcf)
{
    char                 *text, x[48], y[48];
    size_t                n;
    json_t               *jwks, *list;
    u_char                point[65];
    ngx_uint_t            i;
    ngx_game_auth_key_t  *keys;

    jwks = json_object();
    list = json_array();
    if (jwks == NULL || list == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) json_object_set_new(jwks, "keys", list);

    keys = amcf->keys.elts;

    for (i = 0; i < amcf->keys.nelts; i++) {
        if (!EVP_PKEY_get_octet_string_param(keys[i].pkey,
                                             OSSL_PKEY_PARAM_PUB_KEY,
                                             point, sizeof(point), &n)
            || n != 65 || point[0] != 0x04)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot read the public point of key \"%V\"",
                               &keys[i].kid);
            json_decref(jwks);
            return NGX_CONF_ERROR;
        }

        x[game_auth_b64url_encode(x, point + 1, 32)] = '\0';
        y[game_auth_b64url_encode(y, point + 33, 32)] = '\0';

        (void) json_array_append_new(list,
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s%}",
                      "kty", "EC", "crv", "P-256", "x", x, "y", y,
                      "use", "sig", "alg", "ES256",
                      "kid", keys[i].kid.data, keys[i].kid.len));

        if (keys[i].can_sign) {
            amcf->signer = &keys[i];
        }
    }

    text = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);

    if (text == NULL) {
        return NGX_CONF_ERROR;
    }

    n = ngx_strlen(text);
    amcf->jwks.data = ngx_pnalloc(cf->pool, n + 1);
    if (amcf->jwks.data == NULL) {
        free(text);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(amcf->jwks.data, text, n);
    amcf->jwks.data[n] = '\n';
    amcf->jwks.len = n + 1;
    free(text);

    return NGX_CONF_OK;
}


ngx_int_t
ngx_game_auth_sign(ngx_game_auth_main_conf_t *amcf, ngx_pool_t *pool,
    const char *sub, ngx_str_t *token)
{
    u_char                payload[NGX_GAME_AUTH_PAYLOAD_MAX], *p, *last;
    u_char                jti[16], digest[32], der[GAME_AUTH_DER_SIG_MAX];
    u_char                raw[GAME_AUTH_P256_SIG_LEN];
    char                  jti_text[24];
    size_t                derlen, len;
    time_t                now;
    EVP_PKEY_CTX         *pctx;
    ngx_game_auth_key_t  *key;

    key = amcf->signer;
    now = ngx_time();

    if (RAND_bytes(jti, sizeof(jti)) != 1) {
        return NGX_ERROR;
    }

    jti_text[game_auth_b64url_encode(jti_text, jti, sizeof(jti))] = '\0';

    last = ngx_snprintf(payload, sizeof(payload),
                        "{\"iss\":\"%V\",\"aud\":\"%V\",\"sub\":\"%s\","
                        "\"iat\":%T,\"nbf\":%T,\"exp\":%T,\"jti\":\"%s\"}",
                        &amcf->issuer, &amcf->audience, sub, now, now,
                        now + amcf->access_ttl, jti_text);

    len = key->header.len + 1 + ngx_base64_encoded_length(last - payload) + 1
          + ngx_base64_encoded_length(GAME_AUTH_P256_SIG_LEN);

    token->data = ngx_pnalloc(pool, len);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(token->data, key->header.data, key->header.len);
    *p++ = '.';
    p += game_auth_b64url_encode((char *) p, payload, last - payload);

    SHA256(token->data, p - token->data, digest);

    pctx = EVP_PKEY_CTX_new(key->pkey, NULL);
    if (pctx == NULL) {
        return NGX_ERROR;
    }

    derlen = sizeof(der);

    if (EVP_PKEY_sign_init(pctx) <= 0
        || EVP_PKEY_sign(pctx, der, &derlen, digest, sizeof(digest)) <= 0
        || game_auth_sig_der_to_raw(raw, der, derlen) != 0)
    {
        EVP_PKEY_CTX_free(pctx);
        return NGX_ERROR;
    }

    EVP_PKEY_CTX_free(pctx);

    *p++ = '.';
    p += game_auth_b64url_encode((char *) p, raw, sizeof(raw));

    token->len = p - token->data;

    return NGX_OK;
}


/*
 * NGX_OK and the token's subject in "player_id" (37 bytes), or
 * NGX_DECLINED for any token we would not have issued or that is not
 * valid now.
 */

ngx_int_t
ngx_game_auth_verify(ngx_game_auth_main_conf_t *amcf, u_char *token,
    size_t len, u_char *player_id)
{
    long                       n, derlen;
    u_char                    *dot1, *dot2, *end;
    u_char                     payload[NGX_GAME_AUTH_PAYLOAD_MAX];
    u_char                     raw[GAME_AUTH_P256_SIG_LEN + 2];
    u_char                     der[GAME_AUTH_DER_SIG_MAX], digest[32];
    u_char                     whole[32];
    ngx_uint_t                 i;
    game_auth_claims_t         c;
    ngx_game_auth_key_t       *keys, *key;
    ngx_game_auth_verified_t  *v;

    v = NULL;

    if (ngx_game_auth_verified) {
        SHA256(token, len, whole);
        v = &ngx_game_auth_verified[(whole[0] | (whole[1] << 8))
                                    & (NGX_GAME_AUTH_VERIFIED - 1)];

        if (v->used && ngx_memcmp(v->digest, whole, sizeof(whole)) == 0) {
            if (!ngx_game_auth_times_valid(amcf, v->exp, v->nbf)) {
                return NGX_DECLINED;
            }

            ngx_memcpy(player_id, v->sub, GAME_AUTH_UUID_LEN);
            player_id[GAME_AUTH_UUID_LEN] = '\0';

            return NGX_OK;
        }
    }

    end = token + len;

    dot1 = ngx_strlchr(token, end, '.');
    if (dot1 == NULL) {
        return NGX_DECLINED;
    }

    dot2 = ngx_strlchr(dot1 + 1, end, '.');
    if (dot2 == NULL) {
        return NGX_DECLINED;
    }

    key = NULL;
    keys = amcf->keys.elts;

    for (i = 0; i < amcf->keys.nelts; i++) {
        if ((size_t) (dot1 - token) == keys[i].header.len
            && ngx_memcmp(token, keys[i].header.data, keys[i].header.len) == 0)
        {
            key = &keys[i];
            break;
        }
    }

    if (key == NULL) {
        return NGX_DECLINED;
    }

    n = game_auth_b64url_decode(raw, sizeof(raw), (char *) dot2 + 1,
                                end - dot2 - 1);
    if (n != GAME_AUTH_P256_SIG_LEN) {
        return NGX_DECLINED;
    }

    derlen = game_auth_sig_raw_to_der(der, raw);

    SHA256(token, dot2 - token, digest);

    if (EVP_PKEY_verify(key->verify, der, derlen, digest, sizeof(digest))
        != 1)
    {
        /* a bad signature is the client's problem: keep it out of the
         * queue that nginx reports SSL errors from */
        ERR_clear_error();
        return NGX_DECLINED;
    }

    n = game_auth_b64url_decode(payload, sizeof(payload), (char *) dot1 + 1,
                                dot2 - dot1 - 1);
    if (n < 0 || game_auth_claims_parse((char *) payload, n, &c) != 0) {
        return NGX_DECLINED;
    }

    if (c.iss_len != amcf->issuer.len
        || ngx_memcmp(c.iss, amcf->issuer.data, c.iss_len) != 0
        || c.aud_len != amcf->audience.len
        || ngx_memcmp(c.aud, amcf->audience.data, c.aud_len) != 0
        || !game_auth_uuid_valid(c.sub, c.sub_len)
        || !c.has_exp)
    {
        return NGX_DECLINED;
    }

    /* "issued in the future" folds into nbf: neither may be ahead of us */
    if (c.has_iat && (!c.has_nbf || c.iat > c.nbf)) {
        c.nbf = c.iat;
        c.has_nbf = 1;
    }

    if (!c.has_nbf) {
        c.nbf = 0;
    }

    if (v) {
        ngx_memcpy(v->digest, whole, sizeof(whole));
        ngx_memcpy(v->sub, c.sub, GAME_AUTH_UUID_LEN);
        v->exp = c.exp;
        v->nbf = c.nbf;
        v->used = 1;
    }

    if (!ngx_game_auth_times_valid(amcf, c.exp, c.nbf)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(player_id, c.sub, GAME_AUTH_UUID_LEN);
    player_id[GAME_AUTH_UUID_LEN] = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_game_auth_times_valid(ngx_game_auth_main_conf_t *amcf, int64_t exp,
    int64_t nbf)
{
    time_t  now;

    now = ngx_time();

    return now <= exp + amcf->leeway && now + amcf->leeway >= nbf;
}


/* per worker: the table of verified tokens */

ngx_int_t
ngx_game_auth_keys_init_process(ngx_cycle_t *cycle)
{
    ngx_game_auth_verified = ngx_pcalloc(cycle->pool,
                                         NGX_GAME_AUTH_VERIFIED
                                         * sizeof(ngx_game_auth_verified_t));

    return ngx_game_auth_verified ? NGX_OK : NGX_ERROR;
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

    return ngx_game_http_send_text(r, NGX_HTTP_OK, &amcf->jwks);
}
