/*
 * bot_ticket.c: sign join tickets like the backend will (ES256 JWT).
 *
 * DEV/TEST ONLY.  In production only the backend holds the private key
 * and the bot gets its ticket from matchmaking; --direct mode, which skips
 * the backend, needs to mint them itself.  The signature is produced in
 * DER by OpenSSL and rewritten as the fixed 64-byte r || s that JWS wants.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "bot.h"
#include "gs_base64url.h"
#include "gs_ticket.h"


struct bot_signer_s {
    char       kid[65];
    EVP_PKEY  *key;
};


bot_signer_t *
bot_signer_load(const char *spec, char *err, size_t errlen)
{
    const char    *eq = strchr(spec, '=');
    bot_signer_t  *s;
    FILE          *f;

    if (eq == NULL || eq == spec || eq - spec > 64) {
        snprintf(err, errlen, "expected KID=private.pem, not \"%s\"", spec);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(s->kid, spec, (size_t) (eq - spec));

    f = fopen(eq + 1, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open \"%s\"", eq + 1);
        free(s);
        return NULL;
    }
    s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (s->key == NULL || !EVP_PKEY_is_a(s->key, "EC")) {
        snprintf(err, errlen, "\"%s\" is not an EC private key", eq + 1);
        bot_signer_free(s);
        return NULL;
    }
    return s;
}


void
bot_signer_free(bot_signer_t *s)
{
    if (s != NULL) {
        EVP_PKEY_free(s->key);
        free(s);
    }
}


static int
bot_signer_part(json_t *obj, char *out, size_t cap)
{
    char    *text = json_dumps(obj, JSON_COMPACT);
    size_t   n;

    json_decref(obj);
    if (text == NULL) {
        return -1;
    }
    n = gs_base64url_encode(out, cap, (unsigned char *) text, strlen(text));
    free(text);
    return n == (size_t) -1 ? -1 : (int) n;
}


int
bot_signer_mint(bot_signer_t *s, const char *sub, const char *match_id,
    const char *server_id, long ttl_s, char *out, size_t cap)
{
    unsigned char         rnd[12], der[80], rs[64];
    const unsigned char  *p;
    char                  jti[17];
    size_t                derlen = sizeof(der), len, n;
    ECDSA_SIG            *sig;
    const BIGNUM         *r, *sv;
    EVP_MD_CTX           *ctx;
    long                  now = (long) time(NULL);
    int                   i, k, ok;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return -1;
    }
    for (i = 0; i < 8; i++) {
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    }

    k = bot_signer_part(json_pack("{s:s, s:s, s:s}", "alg", "ES256",
                                  "typ", "JWT", "kid", s->kid), out, cap);
    if (k < 0 || (size_t) k + 2 >= cap) {
        return -1;
    }
    out[k++] = '.';
    i = bot_signer_part(json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}",
                                  "sub", sub, "match_id", match_id,
                                  "server_id", server_id,
                                  "iat", (json_int_t) now,
                                  "exp", (json_int_t) (now + ttl_s),
                                  "jti", jti), out + k, cap - (size_t) k);
    if (i < 0) {
        return -1;
    }
    len = (size_t) (k + i);

    ctx = EVP_MD_CTX_new();
    ok = ctx != NULL
         && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) == 1
         && EVP_DigestSign(ctx, der, &derlen, (unsigned char *) out, len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1;
    }

    p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long) derlen);
    if (sig == NULL) {
        return -1;
    }
    ECDSA_SIG_get0(sig, &r, &sv);
    ok = BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(sv, rs + 32, 32) == 32
         && gs_ticket_sig_low_s(rs) == 0;      /* the server wants low s */
    ECDSA_SIG_free(sig);
    if (!ok || len + 2 >= cap) {
        return -1;
    }

    out[len++] = '.';
    n = gs_base64url_encode(out + len, cap - len, rs, sizeof(rs));
    return n == (size_t) -1 ? -1 : (int) (len + n);
}
