
/*
 * Secrets at rest.  The database only ever sees:
 *
 *   - sealed values: AES-256-GCM, stored as 0x01 || nonce(12) || ct ||
 *     tag(16); the associated data binds a value to its purpose and its
 *     player ("game:email:<uuid>"), so a ciphertext copied into another
 *     row or column does not decrypt;
 *   - blind indexes: HMAC-SHA-256 under a second key of the normalised
 *     value, deterministic so that a unique index and lookups work;
 *   - SHA-256 of refresh tokens (256 random bits need no slow hash).
 *
 * bytea values travel as "\x<hex>" text parameters.
 */

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ngx_game_auth.h"


#define NGX_GAME_AUTH_SEAL_VERSION  1
#define NGX_GAME_AUTH_NONCE_LEN     12
#define NGX_GAME_AUTH_TAG_LEN       16
#define NGX_GAME_AUTH_SEAL_MAX      512


static char *ngx_game_auth_bytea(ngx_pool_t *pool, u_char *data, size_t len);
static size_t ngx_game_auth_aad(u_char *buf, size_t size, const char *purpose,
    const char *id);
static ssize_t ngx_game_auth_unhex(u_char *dst, size_t size, u_char *hex,
    size_t len);


/* a key file holds 64 hex digits (32 bytes), as "openssl rand -hex 32" */

char *
ngx_game_auth_key_file(ngx_conf_t *cf, const char *directive, ngx_str_t *file,
    u_char *key)
{
    u_char      buf[80];
    ssize_t     n;
    ngx_str_t   name;
    ngx_file_t  f;

    name = *file;
    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));
    f.name = name;
    f.log = cf->log;
    f.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (f.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open \"%V\" in \"%s\" directive",
                           &name, directive);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&f, buf, sizeof(buf), 0);
    ngx_close_file(f.fd);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    /* the message never shows the file's content: it is a secret */
    if (n != 2 * NGX_GAME_AUTH_KEY_LEN
        || ngx_game_auth_unhex(key, NGX_GAME_AUTH_KEY_LEN, buf, n)
           != NGX_GAME_AUTH_KEY_LEN)
    {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" in \"%s\" directive must hold 64 hex "
                           "digits (openssl rand -hex 32)", &name, directive);
        return NGX_CONF_ERROR;
    }

    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_CONF_OK;
}


void
ngx_game_auth_lower(ngx_str_t *s)
{
    ngx_strlow(s->data, s->data, s->len);
}


/* normalise ctx->email, then seal it for player "id" and index it */

ngx_int_t
ngx_game_auth_email_seal(ngx_game_auth_ctx_t *ctx, const char *id)
{
    ngx_pool_t  *pool = ctx->request->pool;

    ngx_game_auth_lower(&ctx->email);

    if (ngx_game_auth_secret_seal(ctx->amcf, pool, "email", id,
                                  ctx->email.data, ctx->email.len,
                                  &ctx->email_ct) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->email_ix = ngx_game_auth_blind_index(ctx->amcf, pool, "email",
                                              &ctx->email);

    return ctx->email_ix ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_game_auth_secret_seal(ngx_game_auth_main_conf_t *amcf, ngx_pool_t *pool,
    const char *purpose, const char *id, u_char *plain, size_t len,
    char **out)
{
    int              n, ok;
    u_char           buf[NGX_GAME_AUTH_SEAL_MAX], aad[96], *p;
    size_t           aadlen;
    EVP_CIPHER_CTX  *c;

    if (len > NGX_GAME_AUTH_SEAL_MAX - 1 - NGX_GAME_AUTH_NONCE_LEN
              - NGX_GAME_AUTH_TAG_LEN)
    {
        return NGX_ERROR;
    }

    p = buf;
    *p++ = NGX_GAME_AUTH_SEAL_VERSION;

    /* random 96-bit nonces: far below the 2^32 messages per key limit */
    if (RAND_bytes(p, NGX_GAME_AUTH_NONCE_LEN) != 1) {
        return NGX_ERROR;
    }

    aadlen = ngx_game_auth_aad(aad, sizeof(aad), purpose, id);

    c = EVP_CIPHER_CTX_new();
    if (c == NULL) {
        return NGX_ERROR;
    }

    ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, amcf->email_key, p)
         && EVP_EncryptUpdate(c, NULL, &n, aad, aadlen)
         && EVP_EncryptUpdate(c, p + NGX_GAME_AUTH_NONCE_LEN, &n, plain, len)
         && EVP_EncryptFinal_ex(c, p + NGX_GAME_AUTH_NONCE_LEN + n, &n)
         && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, NGX_GAME_AUTH_TAG_LEN,
                                p + NGX_GAME_AUTH_NONCE_LEN + len);

    EVP_CIPHER_CTX_free(c);

    if (!ok) {
        return NGX_ERROR;
    }

    *out = ngx_game_auth_bytea(pool, buf, 1 + NGX_GAME_AUTH_NONCE_LEN + len
                                          + NGX_GAME_AUTH_TAG_LEN);

    return *out ? NGX_OK : NGX_ERROR;
}


/* "hex" as PostgreSQL's encode(col, 'hex') gives it, without "\x" */

ngx_int_t
ngx_game_auth_secret_open(ngx_game_auth_main_conf_t *amcf, ngx_pool_t *pool,
    const char *purpose, const char *id, const char *hex, ngx_str_t *plain)
{
    int              n, ok;
    u_char           buf[NGX_GAME_AUTH_SEAL_MAX], aad[96], *nonce, *ct;
    size_t           len, aadlen, ctlen;
    EVP_CIPHER_CTX  *c;

    len = ngx_strlen(hex);

    if (len % 2 || len / 2 > sizeof(buf)
        || len / 2 < 1 + NGX_GAME_AUTH_NONCE_LEN + NGX_GAME_AUTH_TAG_LEN
        || ngx_game_auth_unhex(buf, sizeof(buf), (u_char *) hex, len)
           != (ssize_t) len / 2
        || buf[0] != NGX_GAME_AUTH_SEAL_VERSION)
    {
        return NGX_ERROR;
    }

    len /= 2;
    nonce = buf + 1;
    ct = nonce + NGX_GAME_AUTH_NONCE_LEN;
    ctlen = len - 1 - NGX_GAME_AUTH_NONCE_LEN - NGX_GAME_AUTH_TAG_LEN;

    plain->data = ngx_pnalloc(pool, ctlen + 1);
    if (plain->data == NULL) {
        return NGX_ERROR;
    }

    aadlen = ngx_game_auth_aad(aad, sizeof(aad), purpose, id);

    c = EVP_CIPHER_CTX_new();
    if (c == NULL) {
        return NGX_ERROR;
    }

    ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, amcf->email_key,
                            nonce)
         && EVP_DecryptUpdate(c, NULL, &n, aad, aadlen)
         && EVP_DecryptUpdate(c, plain->data, &n, ct, ctlen)
         && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, NGX_GAME_AUTH_TAG_LEN,
                                ct + ctlen)
         && EVP_DecryptFinal_ex(c, plain->data + n, &n) > 0;

    EVP_CIPHER_CTX_free(c);

    if (!ok) {
        return NGX_ERROR;
    }

    plain->len = ctlen;
    plain->data[ctlen] = '\0';

    return NGX_OK;
}


char *
ngx_game_auth_blind_index(ngx_game_auth_main_conf_t *amcf, ngx_pool_t *pool,
    const char *kind, ngx_str_t *value)
{
    u_char        msg[320], mac[EVP_MAX_MD_SIZE], *p;
    size_t        klen;
    unsigned int  maclen;

    klen = ngx_strlen(kind) + 1;
    if (klen + value->len > sizeof(msg)) {
        return NULL;
    }

    /* the kind keeps indexes of different fields from ever colliding */
    p = ngx_cpymem(msg, kind, klen);
    p = ngx_cpymem(p, value->data, value->len);

    if (HMAC(EVP_sha256(), amcf->index_key, NGX_GAME_AUTH_KEY_LEN, msg,
             p - msg, mac, &maclen) == NULL)
    {
        return NULL;
    }

    return ngx_game_auth_bytea(pool, mac, maclen);
}


char *
ngx_game_auth_token_hash(ngx_pool_t *pool, ngx_str_t *token)
{
    u_char  digest[SHA256_DIGEST_LENGTH];

    SHA256(token->data, token->len, digest);

    return ngx_game_auth_bytea(pool, digest, sizeof(digest));
}


static char *
ngx_game_auth_bytea(ngx_pool_t *pool, u_char *data, size_t len)
{
    char  *s;

    s = ngx_pnalloc(pool, 2 + 2 * len + 1);
    if (s == NULL) {
        return NULL;
    }

    s[0] = '\\';
    s[1] = 'x';
    *ngx_hex_dump((u_char *) s + 2, data, len) = '\0';

    return s;
}


static size_t
ngx_game_auth_aad(u_char *buf, size_t size, const char *purpose,
    const char *id)
{
    return ngx_snprintf(buf, size, "game:%s:%s", purpose, id) - buf;
}


/* hex digits, without separators, into bytes: their number, or -1 */

static ssize_t
ngx_game_auth_unhex(u_char *dst, size_t size, u_char *hex, size_t len)
{
    char    text[2 * NGX_GAME_AUTH_SEAL_MAX + 1];
    size_t  n;

    if (len >= sizeof(text)) {
        return -1;
    }

    /* OpenSSL wants a C string */
    ngx_memcpy(text, hex, len);
    text[len] = '\0';

    if (!OPENSSL_hexstr2buf_ex(dst, size, &n, text, '\0')) {
        ERR_clear_error();
        return -1;
    }

    return n;
}
