
/*
 * The key store: one set of ES256 keys for the whole http block, and the
 * JWS plumbing around it.  See "Keys and signed tokens" in ngx_game_core.h.
 *
 * Everything about a key that does not change per token is done once when
 * the configuration is read: the JOSE header of each token type is
 * serialised and base64url-encoded (so that checking a token's header is
 * one comparison that pins alg, kid and typ at once, RFC 8725), and a
 * verification context is prepared.  JWS carries an ECDSA signature as
 * r || s (32 bytes each on P-256) where OpenSSL speaks DER: ECDSA_SIG
 * converts between the two.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "ngx_game_core_internal.h"


#define NGX_GAME_JWT_SIG_LEN      64        /* r || s */
#define NGX_GAME_JWT_SIG_B64      86        /* its base64url, unpadded */
#define NGX_GAME_JWT_PAYLOAD_MAX  2048


static const char  *ngx_game_jwt_typ[NGX_GAME_JWT_NTYPES] = {
    "at+jwt",           /* RFC 9068 access tokens */
    "JWT"               /* what the game servers accept as a ticket */
};


static char *ngx_game_jwt_key_read(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_jwt_key_t *key, ngx_str_t *file);
static char *ngx_game_jwt_headers(ngx_conf_t *cf, ngx_game_jwt_key_t *key);
static char *ngx_game_jwt_jwks(ngx_conf_t *cf, ngx_game_jwt_keys_t *keys);
static ngx_int_t ngx_game_jwt_b64_decode(u_char *dst, size_t size,
    u_char *src, size_t len, size_t *out);
static void ngx_game_jwt_key_cleanup(void *data);


/* game_jwt_key kid file [use=sign|verify] */

char *
ngx_game_jwt_key_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_core_main_conf_t  *cmcf = conf;

    u_char               *p;
    ngx_str_t            *value;
    ngx_uint_t            i;
    ngx_game_jwt_key_t   *key, *keys;
    ngx_game_jwt_keys_t  *ks;

    value = cf->args->elts;
    ks = &cmcf->jwt;

    /* the kid goes into headers and the JWKS as it is: keep it plain */
    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'
              || *p == '.'))
        {
            break;
        }
    }

    if (value[1].len == 0 || value[1].len > 64
        || p != value[1].data + value[1].len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key id \"%V\" in \"%V\" directive: use "
                           "1 to 64 of [A-Za-z0-9._-]", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    keys = ks->keys.elts;
    for (i = 0; i < ks->keys.nelts; i++) {
        if (keys[i].kid.len == value[1].len
            && ngx_strncmp(keys[i].kid.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate key id \"%V\" in \"%V\" directive",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    key = ngx_array_push(&ks->keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(key, sizeof(ngx_game_jwt_key_t));
    key->kid = value[1];
    key->use = NGX_GAME_JWT_USE_AUTO;

    if (cf->args->nelts == 4) {
        if (ngx_strcmp(value[3].data, "use=sign") == 0) {
            key->use = NGX_GAME_JWT_USE_SIGN;

        } else if (ngx_strcmp(value[3].data, "use=verify") == 0) {
            key->use = NGX_GAME_JWT_USE_VERIFY;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" directive: "
                               "use=sign or use=verify", &value[3],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_game_jwt_key_read(cf, cmd, key, &value[2]) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (key->use == NGX_GAME_JWT_USE_SIGN) {
        if (!key->private) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "key \"%V\" in \"%V\" directive has no private "
                               "part and cannot have use=sign", &key->kid,
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < ks->keys.nelts - 1; i++) {
            if (keys[i].use == NGX_GAME_JWT_USE_SIGN) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" directive: keys \"%V\" and \"%V\" "
                                   "both have use=sign", &cmd->name,
                                   &keys[i].kid, &key->kid);
                return NGX_CONF_ERROR;
            }
        }
    }

    return ngx_game_jwt_headers(cf, key);
}


/*
 * The directives each service had for its own keys before the key store:
 * nginx -t says what replaces them rather than "unknown directive".
 */

char *
ngx_game_jwt_key_replaced(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" is replaced by \"game_jwt_key kid file "
                       "[use=sign|use=verify]\": declare every key once, for "
                       "access tokens, connection tickets and the JWKS alike",
                       &cmd->name);

    return NGX_CONF_ERROR;
}


/* a PEM private key signs and verifies; a public one only verifies */

static char *
ngx_game_jwt_key_read(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_jwt_key_t *key, ngx_str_t *file)
{
    BIO                 *bio;
    char                 group[32];
    size_t               n;
    EVP_PKEY            *pkey;
    ngx_str_t            path;
    ngx_pool_cleanup_t  *cln;

    path = *file;
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    bio = BIO_new_file((char *) path.data, "r");
    if (bio == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open key file \"%V\" in \"%V\" directive",
                           &path, &cmd->name);
        return NGX_CONF_ERROR;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (pkey) {
        key->private = 1;

    } else {
        (void) BIO_reset(bio);
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }

    BIO_free(bio);
    ERR_clear_error();

    /* never say more about a private key than that it is unusable */
    if (pkey == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no PEM key in \"%V\" in \"%V\" directive",
                           &path, &cmd->name);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(pkey);
        return NGX_CONF_ERROR;
    }

    key->pkey = pkey;
    cln->handler = ngx_game_jwt_key_cleanup;
    cln->data = key;

    if (!EVP_PKEY_is_a(pkey, "EC")
        || !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &n)
        || ngx_strcmp(group, "prime256v1") != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key \"%V\" in \"%V\" directive is not an EC "
                           "P-256 key (ES256)", &path, &cmd->name);
        return NGX_CONF_ERROR;
    }

    key->verify = EVP_PKEY_CTX_new(pkey, NULL);
    if (key->verify == NULL || EVP_PKEY_verify_init(key->verify) <= 0) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_game_jwt_key_cleanup(void *data)
{
    ngx_game_jwt_key_t  *key = data;

    EVP_PKEY_CTX_free(key->verify);
    EVP_PKEY_free(key->pkey);
}


/* {"alg":"ES256","kid":"...","typ":"..."}: sorted members, as most JWT
 * libraries write them, built by jansson and encoded once */

static char *
ngx_game_jwt_headers(ngx_conf_t *cf, ngx_game_jwt_key_t *key)
{
    char        *text;
    json_t      *h;
    ngx_str_t    src;
    ngx_uint_t   t;

    for (t = 0; t < NGX_GAME_JWT_NTYPES; t++) {
        h = json_pack("{s:s,s:s%,s:s}", "alg", "ES256",
                      "kid", key->kid.data, key->kid.len,
                      "typ", ngx_game_jwt_typ[t]);
        if (h == NULL) {
            return NGX_CONF_ERROR;
        }

        text = json_dumps(h, JSON_COMPACT|JSON_SORT_KEYS);
        json_decref(h);

        if (text == NULL) {
            return NGX_CONF_ERROR;
        }

        src.data = (u_char *) text;
        src.len = ngx_strlen(text);

        key->header[t].data = ngx_pnalloc(cf->pool,
                                          ngx_base64_encoded_length(src.len));
        if (key->header[t].data == NULL) {
            free(text);
            return NGX_CONF_ERROR;
        }

        ngx_encode_base64url(&key->header[t], &src);
        free(text);
    }

    return NGX_CONF_OK;
}


/*
 * The key set as the services use it, complete: the signer chosen and the
 * JWKS built.  Called by services from their own configuration hooks,
 * when every directive of the http block has been read; NULL with an
 * error logged when the set cannot serve.
 */

ngx_game_jwt_keys_t *
ngx_game_jwt_keys(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_game_jwt_key_t         *keys;
    ngx_game_jwt_keys_t        *ks;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);
    ks = &cmcf->jwt;

    if (ks->ready) {
        return ks;
    }

    /* use=sign names the signer; without it, the last private key that is
     * not use=verify signs: add the new key last, and it takes over */
    keys = ks->keys.elts;

    for (i = 0; i < ks->keys.nelts; i++) {
        if (keys[i].use == NGX_GAME_JWT_USE_SIGN) {
            ks->signer = &keys[i];
            break;
        }

        if (keys[i].private && keys[i].use == NGX_GAME_JWT_USE_AUTO) {
            ks->signer = &keys[i];
        }
    }

    if (ngx_game_jwt_jwks(cf, ks) != NGX_CONF_OK) {
        return NULL;
    }

    ks->ready = 1;

    return ks;
}


/* the public halves, for independent verifiers: GET /.well-known/jwks.json */

static char *
ngx_game_jwt_jwks(ngx_conf_t *cf, ngx_game_jwt_keys_t *ks)
{
    char                *text;
    size_t               n;
    json_t              *jwks, *list, *jwk;
    u_char               point[65], x[48], y[48];
    ngx_str_t            src, xs, ys;
    ngx_uint_t           i;
    ngx_game_jwt_key_t  *keys;

    list = json_array();
    jwks = json_pack("{s:o}", "keys", list);
    if (jwks == NULL) {
        return NGX_CONF_ERROR;
    }

    keys = ks->keys.elts;

    for (i = 0; i < ks->keys.nelts; i++) {
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

        src.len = 32;
        src.data = point + 1;
        xs.data = x;
        ngx_encode_base64url(&xs, &src);

        src.data = point + 33;
        ys.data = y;
        ngx_encode_base64url(&ys, &src);

        jwk = json_pack("{s:s,s:s,s:s%,s:s%,s:s,s:s,s:s%}",
                        "kty", "EC", "crv", "P-256",
                        "x", xs.data, xs.len, "y", ys.data, ys.len,
                        "use", "sig", "alg", "ES256",
                        "kid", keys[i].kid.data, keys[i].kid.len);

        if (jwk == NULL || json_array_append_new(list, jwk) != 0) {
            json_decref(jwks);
            return NGX_CONF_ERROR;
        }
    }

    text = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);

    if (text == NULL) {
        return NGX_CONF_ERROR;
    }

    n = ngx_strlen(text);
    ks->jwks.data = ngx_pnalloc(cf->pool, n + 1);
    if (ks->jwks.data == NULL) {
        free(text);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ks->jwks.data, text, n);
    ks->jwks.data[n] = '\n';
    ks->jwks.len = n + 1;
    free(text);

    return NGX_CONF_OK;
}


/*
 * (r, s) and (r, n - s) are both valid ECDSA signatures of one message.
 * The game server accepts only the low-s one (s <= n/2), so that a ticket
 * has one spelling: write the low s of P-256 into out (32 bytes).
 */
static ngx_int_t
ngx_game_jwt_low_s(const BIGNUM *s, u_char *out)
{
    static const u_char  n_bytes[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
        0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
    };
    BIGNUM      *n, *half, *low;
    ngx_int_t    rc = NGX_ERROR;

    n = BN_bin2bn(n_bytes, 32, NULL);
    half = BN_new();
    low = BN_new();

    if (n != NULL && half != NULL && low != NULL && BN_rshift1(half, n)) {
        if (BN_cmp(s, half) > 0) {
            if (BN_sub(low, n, s) && BN_bn2binpad(low, out, 32) == 32) {
                rc = NGX_OK;
            }

        } else if (BN_bn2binpad(s, out, 32) == 32) {
            rc = NGX_OK;
        }
    }

    BN_free(n);
    BN_free(half);
    BN_free(low);
    return rc;
}


ngx_int_t
ngx_game_jwt_sign(ngx_game_jwt_keys_t *ks, ngx_uint_t type, json_t *claims,
    ngx_pool_t *pool, ngx_str_t *token)
{
    int                  ok;
    u_char               digest[SHA256_DIGEST_LENGTH], der[80], *p;
    u_char               raw[NGX_GAME_JWT_SIG_LEN];
    char                *payload;
    size_t               len, derlen;
    ngx_str_t            src, part;
    ECDSA_SIG           *sig;
    EVP_PKEY_CTX        *pctx;
    const u_char        *dp;
    const BIGNUM        *r, *s;
    ngx_game_jwt_key_t  *key;

    key = ks->signer;
    if (key == NULL) {
        return NGX_ERROR;
    }

    payload = json_dumps(claims, JSON_COMPACT);
    if (payload == NULL) {
        return NGX_ERROR;
    }

    src.data = (u_char *) payload;
    src.len = ngx_strlen(payload);

    len = key->header[type].len + 1 + ngx_base64_encoded_length(src.len) + 1
          + NGX_GAME_JWT_SIG_B64;

    token->data = ngx_pnalloc(pool, len);
    if (token->data == NULL) {
        free(payload);
        return NGX_ERROR;
    }

    p = ngx_cpymem(token->data, key->header[type].data, key->header[type].len);
    *p++ = '.';

    part.data = p;
    ngx_encode_base64url(&part, &src);
    p += part.len;
    free(payload);

    SHA256(token->data, p - token->data, digest);

    pctx = EVP_PKEY_CTX_new(key->pkey, NULL);
    if (pctx == NULL) {
        return NGX_ERROR;
    }

    derlen = sizeof(der);
    ok = EVP_PKEY_sign_init(pctx) > 0
         && EVP_PKEY_sign(pctx, der, &derlen, digest, sizeof(digest)) > 0;
    EVP_PKEY_CTX_free(pctx);

    if (!ok) {
        return NGX_ERROR;
    }

    dp = der;
    sig = d2i_ECDSA_SIG(NULL, &dp, (long) derlen);
    if (sig == NULL) {
        return NGX_ERROR;
    }

    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, raw, 32) == 32
         && ngx_game_jwt_low_s(s, raw + 32) == NGX_OK;
    ECDSA_SIG_free(sig);

    if (!ok) {
        return NGX_ERROR;
    }

    *p++ = '.';
    src.data = raw;
    src.len = sizeof(raw);
    part.data = p;
    ngx_encode_base64url(&part, &src);
    p += part.len;

    token->len = p - token->data;

    return NGX_OK;
}


/*
 * A token we would have issued, as JSON claims (the caller decrefs), or
 * NGX_DECLINED.  Only the signature is checked here; what the claims must
 * say is the caller's business.
 */

ngx_int_t
ngx_game_jwt_verify(ngx_game_jwt_keys_t *ks, ngx_uint_t type, u_char *token,
    size_t len, json_t **claims)
{
    int                  ok;
    int                  derlen;
    u_char              *dot1, *dot2, *end, *dp;
    u_char               raw[NGX_GAME_JWT_SIG_LEN + 2], der[80];
    u_char               digest[SHA256_DIGEST_LENGTH];
    u_char               payload[NGX_GAME_JWT_PAYLOAD_MAX];
    size_t               n;
    BIGNUM              *r, *s;
    ECDSA_SIG           *sig;
    ngx_uint_t           i;
    ngx_game_jwt_key_t  *keys, *key;

    end = token + len;

    dot1 = ngx_strlchr(token, end, '.');
    if (dot1 == NULL) {
        return NGX_DECLINED;
    }

    dot2 = ngx_strlchr(dot1 + 1, end, '.');
    if (dot2 == NULL) {
        return NGX_DECLINED;
    }

    /* the header must be the very one we sign with: alg, kid and typ */
    key = NULL;
    keys = ks->keys.elts;

    for (i = 0; i < ks->keys.nelts; i++) {
        if ((size_t) (dot1 - token) == keys[i].header[type].len
            && ngx_memcmp(token, keys[i].header[type].data,
                          keys[i].header[type].len) == 0)
        {
            key = &keys[i];
            break;
        }
    }

    if (key == NULL
        || ngx_game_jwt_b64_decode(raw, sizeof(raw), dot2 + 1, end - dot2 - 1,
                                   &n) != NGX_OK
        || n != NGX_GAME_JWT_SIG_LEN)
    {
        return NGX_DECLINED;
    }

    sig = ECDSA_SIG_new();
    r = BN_bin2bn(raw, 32, NULL);
    s = BN_bin2bn(raw + 32, 32, NULL);

    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return NGX_ERROR;
    }

    /* at most 72 bytes for P-256: it fits */
    dp = der;
    derlen = i2d_ECDSA_SIG(sig, &dp);
    ECDSA_SIG_free(sig);

    SHA256(token, dot2 - token, digest);

    ok = derlen > 0
         && EVP_PKEY_verify(key->verify, der, derlen, digest, sizeof(digest))
            == 1;

    /* a bad signature is the client's problem: keep it out of the queue
     * that nginx reports SSL errors from */
    ERR_clear_error();

    if (!ok
        || ngx_game_jwt_b64_decode(payload, sizeof(payload), dot1 + 1,
                                   dot2 - dot1 - 1, &n) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    *claims = json_loadb((char *) payload, n, JSON_REJECT_DUPLICATES, NULL);

    if (*claims == NULL || !json_is_object(*claims)) {
        json_decref(*claims);
        *claims = NULL;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * base64url with one spelling per value: nginx's decoder stops at '=' and
 * ignores the unused low bits of the last character, so the input must
 * also be what encoding the result gives back.
 */

static ngx_int_t
ngx_game_jwt_b64_decode(u_char *dst, size_t size, u_char *src, size_t len,
    size_t *out)
{
    u_char     again[NGX_GAME_JWT_PAYLOAD_MAX * 4 / 3 + 4];
    size_t     n;
    ngx_str_t  in, decoded, encoded;

    /*
     * The exact length: unpadded, every 4 characters are 3 bytes and a
     * last group of 2 or 3 characters 1 or 2 bytes; a last group of one
     * character encodes nothing.  (ngx_base64_decoded_length() rounds up
     * to whole groups, which refused payloads that fit.)
     */
    if (len % 4 == 1) {
        return NGX_DECLINED;
    }

    n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);

    if (n > size || len > sizeof(again)) {
        return NGX_DECLINED;
    }

    in.data = src;
    in.len = len;
    decoded.data = dst;

    if (ngx_decode_base64url(&decoded, &in) != NGX_OK) {
        return NGX_DECLINED;
    }

    encoded.data = again;
    ngx_encode_base64url(&encoded, &decoded);

    if (encoded.len != len || ngx_memcmp(again, src, len) != 0) {
        return NGX_DECLINED;
    }

    *out = decoded.len;

    return NGX_OK;
}
