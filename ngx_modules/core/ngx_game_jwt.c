
/*
 * ES256 signing.  See ngx_game_jwt.h.
 *
 * The JOSE header is serialized once per key when the configuration is
 * read: every token of a key carries the same alg, kid and typ.  JWS wants
 * the ECDSA signature as r || s (32 bytes each on P-256) where OpenSSL
 * produces DER, so the pair is taken out of OpenSSL's ECDSA_SIG.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "ngx_game_jwt.h"


#define NGX_GAME_JWT_SIG_LEN   64


static void ngx_game_jwt_key_cleanup(void *data);


char *
ngx_game_jwt_key_load(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_jwt_key_t *key, ngx_str_t *kid, ngx_str_t *file,
    const char *typ)
{
    u_char              *p, json[256];
    FILE                *fp;
    EVP_PKEY            *pkey;
    ngx_str_t            path, src;
    ngx_pool_cleanup_t  *cln;

    if (kid->len == 0 || kid->len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key id \"%V\" in \"%V\" directive",
                           kid, &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (p = kid->data; p < kid->data + kid->len; p++) {
        if (*p == '"' || *p == '\\' || *p < 0x20) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid key id \"%V\" in \"%V\" directive",
                               kid, &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    path = *file;
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fp = fopen((char *) path.data, "r");
    if (fp == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot open key file \"%V\"",
                           &cmd->name, &path);
        return NGX_CONF_ERROR;
    }

    pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);

    /* never say more about a private key than that it is unusable */
    if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC
        || EVP_PKEY_get_bits(pkey) != 256)
    {
        EVP_PKEY_free(pkey);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" is not a P-256 private key in PEM",
                           &cmd->name, &path);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(pkey);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_game_jwt_key_cleanup;
    cln->data = pkey;

    key->pkey = pkey;
    key->kid = *kid;

    src.data = json;
    src.len = ngx_snprintf(json, sizeof(json),
                           "{\"alg\":\"ES256\",\"kid\":\"%V\",\"typ\":\"%s\"}",
                           kid, typ)
              - json;

    key->header.data = ngx_pnalloc(cf->pool,
                                   ngx_base64_encoded_length(src.len));
    if (key->header.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_encode_base64url(&key->header, &src);

    return NGX_CONF_OK;
}


ngx_int_t
ngx_game_jwt_sign(ngx_game_jwt_key_t *key, ngx_pool_t *pool,
    ngx_str_t *payload, ngx_str_t *token)
{
    u_char               digest[SHA256_DIGEST_LENGTH], raw[NGX_GAME_JWT_SIG_LEN];
    u_char               der[80], *p;
    size_t               len, derlen;
    ngx_str_t            part, src;
    ECDSA_SIG           *sig;
    const BIGNUM        *r, *s;
    EVP_PKEY_CTX        *pctx;
    const u_char        *dp;

    len = key->header.len + 1 + ngx_base64_encoded_length(payload->len) + 1
          + ngx_base64_encoded_length(NGX_GAME_JWT_SIG_LEN);

    token->data = ngx_pnalloc(pool, len);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(token->data, key->header.data, key->header.len);
    *p++ = '.';

    part.data = p;
    ngx_encode_base64url(&part, payload);
    p += part.len;

    SHA256(token->data, p - token->data, digest);

    pctx = EVP_PKEY_CTX_new(key->pkey, NULL);
    if (pctx == NULL) {
        return NGX_ERROR;
    }

    derlen = sizeof(der);

    if (EVP_PKEY_sign_init(pctx) <= 0
        || EVP_PKEY_sign(pctx, der, &derlen, digest, sizeof(digest)) <= 0)
    {
        EVP_PKEY_CTX_free(pctx);
        return NGX_ERROR;
    }

    EVP_PKEY_CTX_free(pctx);

    dp = der;
    sig = d2i_ECDSA_SIG(NULL, &dp, (long) derlen);
    if (sig == NULL) {
        return NGX_ERROR;
    }

    ECDSA_SIG_get0(sig, &r, &s);

    if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32)
    {
        ECDSA_SIG_free(sig);
        return NGX_ERROR;
    }

    ECDSA_SIG_free(sig);

    *p++ = '.';
    src.data = raw;
    src.len = sizeof(raw);
    part.data = p;
    ngx_encode_base64url(&part, &src);
    p += part.len;

    token->len = p - token->data;

    return NGX_OK;
}


static void
ngx_game_jwt_key_cleanup(void *data)
{
    EVP_PKEY_free(data);
}
