
/*
 * Signed tokens, read by both of their verifiers: the key store of the
 * nginx core (ngx_game_jwt_verify, access tokens and tickets) and the game
 * server's ticket check (gs_ticket_verify), both holding the same throwaway
 * key (fuzz-es256.pem and its public half, "kid" fuzz).
 *
 * Random bytes never carry a valid ECDSA signature, so the harness also
 * signs what it is given, to reach the code that only signed tokens reach.
 * The first byte chooses:
 *
 *   bits 0-1  0, 3: the rest is a token, as a client would send it
 *             1: the rest is a payload, signed under our header as it is
 *             2: the rest is JSON claims, signed by ngx_game_jwt_sign
 *   bit 2     the token type: access token or game-server ticket
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/sha.h>

#include "ngx_game_core_internal.h"
#include "ngx_fuzz_shim.h"
#include "gs_base64url.h"
#include "gs_ticket.h"


#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)

/* what ngx_game_jwt_verify decodes a payload into */
#define FUZZ_PAYLOAD_MAX  2048

/* each part of a ticket the game server decodes (gs_ticket.c) */
#define FUZZ_GS_PART_MAX  1536


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_game_jwt_keys_t  *fuzz_keys;
static gs_ticket_keys_t     *fuzz_gs_keys;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char                        err[256];
    void                       *main_conf[1];
    ngx_str_t                  *value;
    ngx_pool_t                 *pool;
    ngx_conf_t                  cf;
    ngx_array_t                 args;
    ngx_command_t               cmd;
    ngx_http_conf_ctx_t         ctx;
    static ngx_game_core_main_conf_t  cmcf;

    /* the key store lives as long as the process: its pool is never
     * freed, as a configuration's pool lives as long as nginx's cycle */
    pool = ngx_fuzz_pool();

    if (ngx_array_init(&cmcf.jwt.keys, pool, 1, sizeof(ngx_game_jwt_key_t))
        != NGX_OK
        || ngx_array_init(&args, pool, 3, sizeof(ngx_str_t)) != NGX_OK)
    {
        abort();
    }

    value = args.elts;
    args.nelts = 3;
    ngx_str_set(&value[0], "game_jwt_key");
    ngx_str_set(&value[1], "fuzz");
    ngx_str_set(&value[2], FUZZ_KEY);

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    ngx_memzero(&cmd, sizeof(ngx_command_t));
    ngx_memzero(&ctx, sizeof(ngx_http_conf_ctx_t));

    main_conf[ngx_game_core_module.ctx_index] = &cmcf;
    ctx.main_conf = main_conf;
    cf.ctx = &ctx;
    cf.pool = pool;
    cf.args = &args;
    cmd.name = value[0];

    if (ngx_game_jwt_key_directive(&cf, &cmd, &cmcf) != NGX_CONF_OK) {
        abort();
    }

    fuzz_keys = ngx_game_jwt_keys(&cf);
    if (fuzz_keys == NULL || fuzz_keys->signer == NULL) {
        abort();
    }

    fuzz_gs_keys = gs_ticket_keys_new();
    if (fuzz_gs_keys == NULL
        || gs_ticket_keys_load(fuzz_gs_keys, "fuzz=" FUZZ_PUBKEY, err,
                               sizeof(err)) != 0)
    {
        fprintf(stderr, "fuzz_jwt: %s\n", err);
        abort();
    }

    return 0;
}


/* header.payload.signature over any payload bytes, as our signer would
 * sign them: the signature is real, the payload is the fuzzer's */

static size_t
fuzz_sign(ngx_uint_t type, const uint8_t *payload, size_t n, u_char *out,
    size_t cap)
{
    u_char              *p, der[80], raw[64], digest[SHA256_DIGEST_LENGTH];
    size_t               derlen;
    ngx_str_t            src, dst;
    ECDSA_SIG           *sig;
    EVP_PKEY_CTX        *pctx;
    const u_char        *dp;
    const BIGNUM        *r, *s;
    ngx_game_jwt_key_t  *key;

    key = fuzz_keys->signer;

    if (key->header[type].len + ngx_base64_encoded_length(n) + 2 + 86 > cap) {
        return 0;
    }

    p = ngx_cpymem(out, key->header[type].data, key->header[type].len);
    *p++ = '.';

    src.data = (u_char *) payload;
    src.len = n;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    SHA256(out, p - out, digest);

    pctx = EVP_PKEY_CTX_new(key->pkey, NULL);
    derlen = sizeof(der);
    if (pctx == NULL || EVP_PKEY_sign_init(pctx) <= 0
        || EVP_PKEY_sign(pctx, der, &derlen, digest, sizeof(digest)) <= 0)
    {
        abort();
    }
    EVP_PKEY_CTX_free(pctx);

    dp = der;
    sig = d2i_ECDSA_SIG(NULL, &dp, (long) derlen);
    if (sig == NULL) {
        abort();
    }

    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32)
    {
        abort();
    }
    ECDSA_SIG_free(sig);

    *p++ = '.';
    src.data = raw;
    src.len = sizeof(raw);
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    return p - out;
}


/* the game server's verdict on a token: what it tells us of the fields */

static gs_ticket_status_e
fuzz_gs_verify(const u_char *token, size_t len)
{
    gs_ticket_t         t;
    gs_ticket_status_e  st;

    st = gs_ticket_verify(fuzz_gs_keys, (const char *) token, len, 0, 5, &t);

    FUZZ_CHECK(gs_ticket_status_name(st) != NULL);

    if (st == GS_TICKET_OK) {
        FUZZ_CHECK(t.sub[0] && t.match_id[0] && t.server_id[0]);
        FUZZ_CHECK(strcmp(t.kid, "fuzz") == 0);
    }

    return st;
}


static ngx_int_t
fuzz_ngx_verify(ngx_uint_t type, u_char *token, size_t len, json_t **claims)
{
    ngx_int_t  rc;

    *claims = NULL;
    rc = ngx_game_jwt_verify(fuzz_keys, type, token, len, claims);

    FUZZ_CHECK(rc == NGX_OK || rc == NGX_DECLINED);
    FUZZ_CHECK((rc == NGX_OK) == (*claims != NULL));
    FUZZ_CHECK(rc != NGX_OK || json_is_object(*claims));

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                *text;
    size_t               n;
    u_char              *token;
    json_t              *claims, *parsed, *other;
    ngx_int_t            rc;
    ngx_str_t            signed_token;
    ngx_uint_t           type, mode;
    ngx_pool_t          *pool;
    gs_ticket_status_e   st;

    if (size < 1 || size > 8192) {
        return -1;
    }

    mode = data[0] & 3;
    type = (data[0] & 4) ? NGX_GAME_JWT_TICKET : NGX_GAME_JWT_ACCESS;
    data++;
    size--;

    switch (mode) {

    case 1:
        /* a payload signed under our header: only its contents decide */
        n = ngx_base64_encoded_length(size) + 256;
        token = malloc(n);
        if (token == NULL) {
            return 0;
        }

        n = fuzz_sign(type, data, size, token, n);
        FUZZ_CHECK(n > 0);

        parsed = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                            NULL);

        rc = fuzz_ngx_verify(type, token, n, &claims);

        if (size <= FUZZ_PAYLOAD_MAX && json_is_object(parsed)) {
            FUZZ_CHECK(rc == NGX_OK && json_equal(claims, parsed));

        } else if (size > FUZZ_PAYLOAD_MAX || !json_is_object(parsed)) {
            FUZZ_CHECK(rc == NGX_DECLINED);
        }

        st = fuzz_gs_verify(token, n);

        /* the header is ours and the signature good: a ticket may only be
         * refused for what its claims say */
        if (type == NGX_GAME_JWT_TICKET) {
            FUZZ_CHECK(st != GS_TICKET_BAD_ALG && st != GS_TICKET_UNKNOWN_KID
                       && st != GS_TICKET_BAD_SIGNATURE);

            /* fuzz_sign() signs with raw ECDSA, so half its signatures
             * are the high-s spelling the game server refuses before it
             * reads any claim (protocol 2): only the others say anything
             * about the claims */
            if (st != GS_TICKET_HIGH_S
                && ngx_base64_encoded_length(size) < FUZZ_GS_PART_MAX * 4 / 3)
            {
                FUZZ_CHECK((st == GS_TICKET_MALFORMED)
                           == !json_is_object(parsed));
            }
        }

        json_decref(claims);
        json_decref(parsed);
        free(token);
        break;

    case 2:
        /* claims as a service signs them */
        parsed = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                            NULL);
        if (!json_is_object(parsed)) {
            json_decref(parsed);
            return 0;
        }

        pool = ngx_fuzz_pool();

        rc = ngx_game_jwt_sign(fuzz_keys, type, parsed, pool, &signed_token);
        FUZZ_CHECK(rc == NGX_OK);

        rc = fuzz_ngx_verify(type, signed_token.data, signed_token.len,
                             &claims);

        /* what we sign, we read back, up to the payload limit */
        text = json_dumps(parsed, JSON_COMPACT);
        FUZZ_CHECK(text != NULL);

        if (strlen(text) <= FUZZ_PAYLOAD_MAX) {
            FUZZ_CHECK(rc == NGX_OK && json_equal(claims, parsed));
        }

        free(text);

        /* and never under the other type's header */
        FUZZ_CHECK(fuzz_ngx_verify(!type, signed_token.data, signed_token.len,
                                   &other)
                   == NGX_DECLINED);

        (void) fuzz_gs_verify(signed_token.data, signed_token.len);

        json_decref(claims);
        json_decref(parsed);
        ngx_fuzz_pool_free(pool);
        break;

    default:
        /* a token as sent */
        token = malloc(size ? size : 1);
        if (token == NULL) {
            return 0;
        }

        ngx_memcpy(token, data, size);

        if (fuzz_ngx_verify(NGX_GAME_JWT_ACCESS, token, size, &claims)
            == NGX_OK)
        {
            json_decref(claims);
        }

        if (fuzz_ngx_verify(NGX_GAME_JWT_TICKET, token, size, &claims)
            == NGX_OK)
        {
            json_decref(claims);
        }

        (void) fuzz_gs_verify(token, size);

        free(token);
        break;
    }

    return 0;
}
